"""`sipsim run SCENARIO`: start the lab's nodes on loopback, place its calls, print the report."""

from __future__ import annotations

from pathlib import Path

import trio

from sipsim.errors import UserError
from sipsim.lab.expect import check as check_expectations
from sipsim.lab.loader import load_scenario
from sipsim.commands._observe import add_observer_flags, observers_from
from sipsim.lab.warnings import legacy_warnings
from sipsim.report.jsonfile import dumps_report
from sipsim.report.progress import call_progress
from sipsim.report.table import make_console, print_report
from sipsim.runtime.runner import LabRunner


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run a lab scenario and print its report",
                       description="Start every node of the scenario on loopback, place its calls over "
                                   "mutual TLS and print one row per call.")
    p.add_argument("scenario", type=Path, help="scenario file (TOML), e.g. scenarios/seed-000-self-signed.toml")
    p.add_argument("--report", type=Path, metavar="FILE.json", help="write the JSON report here")
    p.add_argument("--port-offset", type=int, default=0, metavar="N",
                   help="add N to every port of the lab (to run two labs side by side)")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")
    add_observer_flags(p)
    p.add_argument("--transcript", action="store_true",
                   help="after the report, tell every TLS connection in plain words (flights, certificates, alerts)")
    p.set_defaults(func=run)


def run(args) -> int:
    scenario = load_scenario(args.scenario)
    if not scenario.traffic():
        raise UserError(f"{args.scenario}: no [[call]] or [[load]] to place: add one (see docs/scenarios.md)")
    console = make_console()
    for line in legacy_warnings(scenario):
        console.print(f"[yellow]warning: {line}[/]", soft_wrap=True)
    observers = observers_from(args)
    total = sum(len(b.calls) for b in scenario.traffic())
    try:
        with call_progress(total, console, enabled=not args.quiet) as advance:
            runner = LabRunner(scenario, port_offset=args.port_offset, observers=observers, on_call_done=advance)
            result = trio.run(runner.run)
    finally:
        observers.close()
    for line in result.pki_events:
        if not line.startswith("kept"):
            console.print(f"[dim]pki: {line}[/]")
    if not args.quiet:
        print_report(result, console)
    console.print(f"{len(result.calls)} calls: {result.answered} answered, {result.failed} failed "
                  f"in {result.duration_s:.2f} s")
    if getattr(args, "transcript", False):
        from sipsim.report.transcript import render_run_transcripts

        console.print(render_run_transcripts(result.to_dict()), markup=False, highlight=False, soft_wrap=True)
    status = 0
    if scenario.expect:
        result.expectations = check_expectations(scenario.expect, result, result.trunk_status)
        if result.expectations:
            console.print(f"[red bold]{len(result.expectations)} expectation(s) of {args.scenario} do not hold:[/]")
            for line in result.expectations:
                console.print(f"  [red]✗[/] {line}", soft_wrap=True)
            status = 1
        else:
            console.print(f"[green]every expectation of {args.scenario} holds[/]")
    if args.report:
        try:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.write_text(dumps_report(result.to_dict()))
        except OSError as e:
            raise UserError(f"{args.report}: cannot write the report: {e.strerror}") from None
        console.print(f"report: {args.report}")
    if result.interrupted:
        console.print("interrupted (Ctrl-C): calls in progress were hung up; every call placed is in the report")
        return 130
    return status
