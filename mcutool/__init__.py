"""mcutool: a deployment compiler from trained networks to integer-only microcontroller firmware."""
__version__ = "0.1.0"
