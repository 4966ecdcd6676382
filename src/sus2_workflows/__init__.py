"""Workflows around the SUS2 model: engine-neutral science steps with jobflow/atomate2 and AiiDA adapters."""

__version__ = "0.1.0"
