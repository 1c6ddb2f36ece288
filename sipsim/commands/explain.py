"""`sipsim explain REPORT.json`: why the calls of a report failed, grouped, with evidence and fixes."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="say why the calls of a report failed, with evidence and the fix",
                       description="Group the failed calls of a JSON report (sipsim run --report) by reason, "
                                   "destination node and presented certificate, and say in plain sentences what "
                                   "happened, the evidence (certificate, X.509 Subject Name list, trust store) "
                                   "and what to change.")
    p.add_argument("report", type=Path, help="the JSON report written by `sipsim run --report FILE.json`")
    p.set_defaults(func=run)


def run(args) -> int:
    from sipsim.report.explain import load_report, render_explain
    from sipsim.report.table import make_console

    report = load_report(args.report)
    make_console().print(render_explain(report), markup=False, highlight=False, soft_wrap=True, end="")
    return 0
