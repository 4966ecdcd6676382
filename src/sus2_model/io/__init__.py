"""Readers and writers: the authors' ``.mtp`` models, MLIP ``.cfg`` datasets, extxyz, ASE db, mlearn JSON."""

from .cfg import read_cfg, write_cfg
from .datasets import read_structures, write_structures
from .mtp import MtpFile, read_mtp, write_mtp

__all__ = [
    "MtpFile",
    "read_cfg",
    "read_mtp",
    "read_structures",
    "write_cfg",
    "write_mtp",
    "write_structures",
]
