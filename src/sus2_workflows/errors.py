"""Exception hierarchy of the workflows: one base class, one subclass per kind of failure."""

from __future__ import annotations


class Sus2WorkflowError(Exception):
    """Base class of every error raised by :mod:`sus2_workflows`."""


class SpecError(Sus2WorkflowError, ValueError):
    """A campaign spec is malformed; the message names the key."""


class StoreError(Sus2WorkflowError):
    """A job store is misconfigured or unreachable."""


class LabelingError(Sus2WorkflowError):
    """A DFT (or other reference) calculation failed; the message names the structure."""


class ScreeningError(Sus2WorkflowError):
    """A screen gave no result it could justify for one structure (bad input, a fit that is no result); the
    message names the structure or the reason."""
