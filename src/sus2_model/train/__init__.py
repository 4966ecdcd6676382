"""Training: data (:mod:`.data`), initialisation from it (:mod:`.initialise`), closed-form linear refits
(:mod:`.linear`), the gradient-based loop (:mod:`.trainer`), its checkpoints (:mod:`.checkpoints`) and outputs
(:mod:`.export`)."""

from .linear import fit_linear

__all__ = ["fit_linear"]
