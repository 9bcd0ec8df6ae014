"""mcutool: a deployment compiler from trained networks to integer-only microcontroller firmware."""
__version__ = "0.1.0"

from mcutool import ops  # noqa: E402,F401  (every operator registers its IR kind)
