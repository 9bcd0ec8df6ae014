"""mcutool: a deployment compiler from trained networks to integer-only microcontroller firmware.

The Python API (mcutool.api): mcutool.compile, mcutool.run, mcutool.validate, mcutool.bench, mcutool.load.
"""
__version__ = "0.1.0"

_API = ("compile", "run", "validate", "bench", "load", "Firmware", "Validation", "Bench")


def __getattr__(name):  # the API imports numpy and the stages: only when it is used, not by `import mcutool`
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'mcutool' has no attribute {name!r}")


from mcutool import ops  # noqa: E402,F401  (every operator registers its IR kind)
