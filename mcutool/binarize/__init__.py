"""Binarization (DESIGN.md §8): int8 layers that compute on +-1 values become 1-bit XNOR/popcount layers."""
from .binarize import BinarizeReport, binarize, parse_selection

__all__ = ["BinarizeReport", "binarize", "parse_selection"]
