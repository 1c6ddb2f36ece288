"""The run's report in the terminal: one row per call, then one row per destination."""

from __future__ import annotations

from collections import Counter, defaultdict

from rich.console import Console
from rich.table import Table

from sipsim.report.records import RunResult


def _short_tls(version: str | None, cipher: str | None) -> str:
    if not version:
        return "-"
    cipher = (cipher or "").removeprefix("TLS_")  # TLS 1.3 suite names
    return f"{version.replace('TLSv', '')} {cipher}".strip()


def _cn(slash_subject: str | None) -> str:
    if not slash_subject:
        return "-"
    return slash_subject.rsplit("/CN=", 1)[-1] if "/CN=" in slash_subject else slash_subject


def calls_table(result: RunResult) -> Table:
    t = Table(title=f"{result.scenario}: {len(result.calls)} calls, {result.answered} answered, "
                    f"{result.failed} failed", title_justify="left", pad_edge=False)
    t.add_column("#", justify="right")
    t.add_column("call (pattern)", no_wrap=True)
    t.add_column("origin → destination")
    t.add_column("result")
    t.add_column("TLS", no_wrap=True)
    t.add_column("peer CN")
    t.add_column("setup ms", justify="right")
    for c in result.calls:
        route = f"{c.origin_node or '-'} → {c.destination_node or c.destination or '-'}"
        if len(c.attempts) > 1:
            route += f" ({len(c.attempts)} attempts)"
        if c.outcome == "answered":
            outcome = f"[green]answered {c.status}[/]"
        else:
            outcome = f"[red]{c.reason or 'failed'}[/]" + (f" {c.status}" if c.status else "")
        call = f"{c.caller} → {c.called}" + (f" ({c.pattern})" if c.pattern else "")
        t.add_row(str(c.id), call, route, outcome, _short_tls(c.tls_version, c.cipher), _cn(c.peer_subject),
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
        t.add_column(col, justify="right" if col in ("attempts", "answered") else "left")
    for (trunk, dest), counts in sorted(rows.items()):
        failed = ", ".join(f"{r} ×{n}" for r, n in sorted(counts.items()) if r not in ("attempts", "answered"))
        t.add_row(trunk, dest, str(counts["attempts"]), str(counts["answered"]), failed or "-")
    return t


def make_console() -> Console:
    """A console at least 120 columns wide when output is not a terminal (CI logs, files)."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 150))
    return console


def print_report(result: RunResult, console: Console | None = None) -> None:
    console = console or make_console()
    console.print(calls_table(result))
    console.print(destinations_table(result))
    pinged = {k: v for k, v in result.trunk_status.items() if not v.startswith("Unknown")}
    if pinged:
        console.print("[bold]SIP trunk status[/] (OPTIONS ping, as each node sees its trunk)")
        for key, status in sorted(pinged.items()):
            colour = {"Full Service": "green", "Partial Service": "yellow"}.get(status, "red")
            node, trunk = key.split("/", 1)
            downs = [c for c in result.ping_changes if c["node"] == node and c["trunk"] == trunk
                     and c["to"] == "out_of_service"]
            why = "; ".join(f"{c['destination']} out of service ({c['cause']})" for c in downs)
            console.print(f"  {trunk} on {node}: [{colour}]{status}[/]" + (f" — {why}" if why else ""),
                          soft_wrap=True)
    from rich.text import Text

    from sipsim.report.explain import explain

    groups = explain(result.to_dict())
    if groups:
        failed = any(c.outcome != "answered" for c in result.calls)
        console.print("[bold]Why calls failed[/]" if failed else
                      "[bold]Attempts that failed (the calls were carried elsewhere)[/]")
        for g in groups:
            for i, line in enumerate(g.lines()):
                console.print(Text("  " + line, style="red" if i == 0 else ""), soft_wrap=True)
