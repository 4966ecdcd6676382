"""The one progress bar of the screening steps: rich, on stderr, gone when done."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def progress_bar(description: str, total: int, shown: bool) -> Iterator[Callable[..., None]]:
    """A progress bar of ``total`` steps (or nothing, where not ``shown``), as a function that advances it by its
    argument (default 1)."""
    if not shown:
        yield lambda steps=1: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda steps=1: bar.advance(task, steps)
