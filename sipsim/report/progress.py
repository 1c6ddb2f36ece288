"""A progress bar for runs of many calls (rich), quiet when there are few."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def call_progress(total: int, console, enabled: bool = True):
    """Yields a callback(record) that advances the bar; shown only for 20 calls or more, on a terminal
    (piped or logged output gets the summary lines only: no bar to redraw, no refresh thread)."""
    if not enabled or total < 20 or not getattr(console, "is_terminal", True):
        yield lambda record: None
        return
    with Progress(TextColumn("calls"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("calls", total=total, failed=0)
        failed = 0

        def advance(record) -> None:
            nonlocal failed
            failed += record.outcome != "answered"
            progress.update(task, advance=1, failed=failed)

        yield advance
