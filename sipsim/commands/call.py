"""`sipsim call sip:DN@HOST:PORT --from DN`: place calls over mutual TLS to a real CUCM, SBC, proxy
or another sipsim, and summarise them."""

from __future__ import annotations

from pathlib import Path

import trio

from sipsim.commands._observe import add_observer_flags, observers_from
from sipsim.commands._tlsflags import add_tls_flags, endpoint_from
from sipsim.errors import UserError
from sipsim.lab import model as m
from sipsim.report.jsonfile import dumps_report
from sipsim.report.progress import call_progress
from sipsim.report.summary import load_summary, summary_lines
from sipsim.report.table import make_console, print_report
from sipsim.runtime.runner import LabRunner
from sipsim.runtime.single import endpoint_scenario, parse_sip_uri


def add_parser(sub) -> None:
    p = sub.add_parser(
        "call", help="place calls to sip:DN@HOST:PORT over mutual TLS",
        description="Place one or many calls (INVITE … BYE) to one destination and summarise them.",
        epilog="example:\n  sipsim call sip:8511001@127.0.0.21:5061 --from 7131001 --local 127.0.0.11 "
               "--cert certs/seed-000/CUCM7-PUB.bbbburns.lab.pem --key certs/seed-000/CUCM7-PUB.bbbburns.lab.key "
               "--trust certs/seed-000/CUCM8-Publisher.bbbburns.lab.pem --subjects CUCM8-Publisher.bbbburns.lab "
               "--count 100 --rate 50 --concurrency 10",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("uri", help="sip:DN@HOST:PORT (port 5061 when omitted)")
    p.add_argument("--from", dest="caller", required=True, metavar="DN", help="the calling directory number")
    p.add_argument("--local", default="127.0.0.1", metavar="ADDRESS", help="source address (default 127.0.0.1)")
    add_tls_flags(p, server=False)
    p.add_argument("--count", type=int, default=1, metavar="N", help="calls to place (default 1)")
    p.add_argument("--rate", type=float, default=0.0, metavar="R", help="calls started per second (0: as fast as allowed)")
    p.add_argument("--concurrency", type=int, default=1, metavar="C", help="calls in progress at once (default 1)")
    p.add_argument("--hold", type=float, default=0.0, metavar="S", help="seconds each answered call stays up")
    p.add_argument("--new-connection", action="store_true",
                   help="open a new TLS connection for every call (default: one persistent connection, as CUCM)")
    p.add_argument("--report", type=Path, metavar="FILE.json", help="write the JSON report here")
    p.add_argument("--table", action="store_true", help="print one row per call")
    add_observer_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    console = make_console()
    called, host, port = parse_sip_uri(args.uri)
    if not called:
        raise UserError(f"{args.uri}: put the called number in the URI: sip:DN@{host}:{port}")
    if args.count < 1 or args.concurrency < 1:
        raise UserError("--count and --concurrency must be at least 1")
    pki, settings = endpoint_from(args, args.local, 5061, console)
    calls = [m.CallSpec(args.caller, called) for _ in range(args.count)]
    scenario = endpoint_scenario(settings, target=(host, port), caller=args.caller, calls=calls,
                                 concurrency=args.concurrency, interval=1.0 / args.rate if args.rate > 0 else 0.0,
                                 hold=args.hold)
    observers = observers_from(args)
    try:
        with call_progress(args.count, console) as advance:
            runner = LabRunner(scenario, pki=pki, observers=observers, on_call_done=advance)
            runner.reuse_connections = not args.new_connection

            async def main():
                async with trio.open_nursery() as nursery:
                    await runner.start_nodes(nursery, listen=False)
                    started = trio.current_time()
                    records = await runner.place_all()
                    await trio.sleep(0.05)
                    nursery.cancel_scope.cancel()
                from sipsim.report.records import RunResult

                result = RunResult("sipsim call", records, trio.current_time() - started)
                result.connections = [runner._connection_dict(i, r) for i, r in enumerate(runner.connections)]
                return result

            result = trio.run(main)
    finally:
        observers.close()
    summary = load_summary(result)
    if args.table or args.count <= 10:
        print_report(result, console)
    for line in summary_lines(summary):
        console.print(line, soft_wrap=True)
    if args.report:
        data = result.to_dict()
        data["summary"] = summary
        try:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.write_text(dumps_report(data))
        except OSError as e:
            raise UserError(f"{args.report}: cannot write the report: {e.strerror}") from None
    return 0 if result.failed == 0 else 1
