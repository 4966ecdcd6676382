"""Training: closed-form linear refits and (in later modules) gradient-based training."""

from .linear import fit_linear

__all__ = ["fit_linear"]
