"""The progress bar: on a terminal for 20 calls or more; never when the output is piped."""

import io

from rich.console import Console

from sipsim.report.progress import call_progress
from sipsim.report.records import CallRecord


def _run(console, total):
    with call_progress(total, console) as advance:
        for i in range(total):
            advance(CallRecord(i, "a", "b", outcome="answered"))


def test_no_bar_when_output_is_piped():
    out = io.StringIO()
    _run(Console(file=out, force_terminal=False), 50)
    assert out.getvalue() == ""


def test_bar_on_a_terminal():
    out = io.StringIO()
    _run(Console(file=out, force_terminal=True, width=100), 50)
    assert "calls" in out.getvalue()
