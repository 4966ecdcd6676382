"""Readers and writers: the authors' ``.mtp`` models, MLIP ``.cfg`` datasets, extxyz, ASE db, mlearn JSON; every
writer is atomic (:func:`atomic_write`, :func:`atomic_path`)."""

from .atomic import atomic_path, atomic_write
from .cfg import read_cfg, write_cfg
from .datasets import read_structures, write_structures
from .mtp import MtpFile, read_mtp, write_mtp

__all__ = [
    "MtpFile",
    "atomic_path",
    "atomic_write",
    "read_cfg",
    "read_mtp",
    "read_structures",
    "write_cfg",
    "write_mtp",
    "write_structures",
]
