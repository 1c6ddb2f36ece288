"""The run's report in the terminal: one row per call, then one row per destination."""

from __future__ import annotations

from collections import Counter, defaultdict

from rich.console import Console
from rich.table import Table

from sipsim.report.records import RunResult


def calls_table(result: RunResult) -> Table:
    t = Table(title=f"{result.scenario}: {len(result.calls)} calls, {result.answered} answered, "
                    f"{result.failed} failed", title_justify="left")
    for col in ("#", "caller → called", "pattern", "trunk", "origin node", "destination",
                "outcome", "status", "reason", "TLS", "peer certificate", "setup ms"):
        t.add_column(col, no_wrap=col not in ("peer certificate", "reason"))
    for c in result.calls:
        dest = c.destination or "-"
        if c.destination_node:
            dest = f"{c.destination_node} ({c.destination})"
        outcome = "[green]answered[/]" if c.outcome == "answered" else "[red]failed[/]"
        tls = " ".join(x for x in (c.tls_version, c.cipher) if x) or "-"
        peer = c.peer_subject or "-"
        t.add_row(str(c.id), f"{c.caller} → {c.called}", c.pattern or "-", c.trunk or "-", c.origin_node or "-",
                  dest, outcome, str(c.status or "-"), c.reason or "", tls, peer,
                  f"{c.setup_ms:.1f}" if c.setup_ms is not None else "-")
    return t


def destinations_table(result: RunResult) -> Table:
    rows: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for c in result.calls:
        for a in c.attempts:
            key = (c.trunk or "-", f"{a.destination_node} ({a.destination})" if a.destination_node else a.destination)
            rows[key]["attempts"] += 1
            if a.reason is None:
                rows[key]["answered"] += 1
            else:
                rows[key][a.reason] += 1
    t = Table(title="per destination", title_justify="left")
    for col in ("trunk", "destination", "attempts", "answered", "failed by reason"):
        t.add_column(col)
    for (trunk, dest), counts in sorted(rows.items()):
        failed = ", ".join(f"{r} ×{n}" for r, n in sorted(counts.items()) if r not in ("attempts", "answered"))
        t.add_row(trunk, dest, str(counts["attempts"]), str(counts["answered"]), failed or "-")
    return t


def print_report(result: RunResult, console: Console | None = None) -> None:
    console = console or Console()
    console.print(calls_table(result))
    console.print(destinations_table(result))
    failed = [c for c in result.calls if c.outcome != "answered"]
    if failed:
        console.print("[bold]Why calls failed[/]")
        seen = set()
        for c in failed:
            key = (c.reason, c.detail)
            if key in seen:
                continue
            seen.add(key)
            n = sum(1 for x in failed if (x.reason, x.detail) == key)
            console.print(f"  [red]{c.reason}[/] ×{n}: {c.detail or ''}", soft_wrap=True)
