"""C generation: TVM kernels for the MAC-heavy layers, runtime/ kernels for the rest, Jinja2 for the project."""
