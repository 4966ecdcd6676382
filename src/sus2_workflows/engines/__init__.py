"""Thin runners of the same campaign stages: ``inline`` (no engine, one process) and ``jobflow`` (Makers, and the
run_locally / FireWorks / jobflow-remote managers).  Each only schedules :mod:`sus2_workflows.campaign`."""
