"""Progress output for long work: one line when a stage starts, one when it ends, with timing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

console = Console(stderr=True, highlight=False, soft_wrap=True)


class Stages:
    """Runs named stages, prints their progress, and keeps their durations (seconds)."""

    def __init__(self, total: int | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.total = total

    @contextmanager
    def stage(self, name: str, description: str) -> Iterator[None]:
        number = len(self.timings) + 1
        prefix = f"[{number}/{self.total}]" if self.total else f"[{number}]"
        console.print(f"[bold cyan]{prefix}[/] {description} …")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - started, 2)
        console.print(f"    [green]done[/] {name} in {self.timings[name]:.1f}s")

    def note(self, message: str) -> None:
        console.print(f"    {message}")
