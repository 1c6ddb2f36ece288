"""`sipsim serve`'s console: the first events one line each, then one summary line per second."""

import io

from rich.console import Console

from sipsim.commands.serve import EventLines


def _console():
    buf = io.StringIO()
    return Console(file=buf, width=200, color_system=None), buf


def test_first_lines_then_summaries():
    console, buf = _console()
    lines = EventLines(console, first=3)
    lines.node = "N"
    for i in range(3):
        lines(f"N: call {i} → 8511001: answering 200", "call_answered")
    for _ in range(5):
        lines("N: call x: answering 200", "call_answered")
    lines("N: ✓ TLS from a", "connection")
    lines("N: ✗ TLS from b: tls_unknown_ca", "connection_failed")
    lines("N: call y: answering 486", "call_failed")
    out = buf.getvalue()
    assert out.count("answering 200") == 3 and "call x" not in out
    assert lines.flush() == "N: last second: 2 connections (1 failed), 5 calls answered, 1 failed"
    assert lines.flush() is None  # a second without events prints nothing


def test_quiet_prints_summaries_only():
    console, buf = _console()
    lines = EventLines(console, quiet=True)
    lines("N: call 1: answering 200", "call_answered")
    assert buf.getvalue() == ""
    assert lines.flush() == "last second: 0 connections, 1 call answered, 0 failed"
