"""SUS2-MLIP in PyTorch: the potential, its file formats, an ASE calculator and batched evaluation."""

from .calculator import Sus2Calculator
from .errors import FileFormatError, StructureError, Sus2ModelError, UnknownElementError
from .model import Sus2Potential
from .predict import error_metrics, load_model, predict

__version__ = "0.1.0"

__all__ = [
    "FileFormatError",
    "StructureError",
    "Sus2Calculator",
    "Sus2ModelError",
    "Sus2Potential",
    "UnknownElementError",
    "__version__",
    "error_metrics",
    "load_model",
    "predict",
]
