"""Memory-aware scheduling: tensor lifetimes, the static arena, patch-based inference."""
