"""`sipsim ladder REPORT.json [--call ID] [--svg FILE]`: one call of a report as a ladder diagram."""

from __future__ import annotations

from pathlib import Path

from sipsim.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("ladder", help="draw one call of a report as a ladder diagram (text or SVG)",
                       description="Draw one call of a JSON report (sipsim run --report) as a ladder: caller "
                                   "phone | origin node | destination node | called phone, with the TCP "
                                   "connection, every TLS handshake flight and every SIP message, failures in red.")
    p.add_argument("report", type=Path, help="the JSON report written by `sipsim run --report FILE.json`")
    p.add_argument("--call", type=int, metavar="ID", help="the call's id (default: the first failed call, else call 1)")
    p.add_argument("--svg", type=Path, metavar="FILE", help="also write the ladder as a self-contained SVG here")
    p.set_defaults(func=run)


def run(args) -> int:
    from sipsim.report.explain import load_report
    from sipsim.report.ladder import find_call, render_svg, render_text
    from sipsim.report.table import make_console

    report = load_report(args.report)
    call = find_call(report, args.call)
    if call is None:
        ids = [c.get("id") for c in report.get("calls") or []]
        if not ids:
            raise UserError(f"{args.report}: the report has no calls")
        raise UserError(f"{args.report}: no call {args.call}; the report has calls {ids[0]}–{ids[-1]}")
    console = make_console()
    console.print(render_text(report, call["id"]), highlight=False, soft_wrap=True, end="")
    if args.svg:
        try:
            args.svg.parent.mkdir(parents=True, exist_ok=True)
            args.svg.write_text(render_svg(report, call["id"]), encoding="utf-8")
        except OSError as e:
            raise UserError(f"{args.svg}: cannot write the SVG: {e.strerror}") from None
        console.print(f"svg: {args.svg}")
    return 0
