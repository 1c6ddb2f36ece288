"""`sipsim serve`: one endpoint that answers calls and OPTIONS over mutual TLS until interrupted —
from flags, or one node of a lab (`sipsim serve SCENARIO --node NAME`, to spread a lab over hosts)."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import trio

from sipsim.commands._observe import add_observer_flags, observers_from
from sipsim.commands._tlsflags import add_tls_flags, endpoint_from
from sipsim.errors import UserError
from sipsim.lab.loader import load_scenario
from sipsim.report.table import make_console
from sipsim.runtime.runner import LabRunner
from sipsim.runtime.single import NODE, endpoint_scenario, limits_from_flags, parse_hostport


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="answer calls and OPTIONS over mutual TLS until interrupted",
        description="Run one SIP-over-TLS endpoint: from flags (--listen, --cert, --key, --trust, --subjects), "
                    "or one node of a scenario (SCENARIO --node NAME).",
        epilog="examples:\n  sipsim serve --listen 127.0.0.21:5061 --cert certs/seed-000/CUCM8-Publisher.bbbburns.lab.pem "
               "--key certs/seed-000/CUCM8-Publisher.bbbburns.lab.key --trust certs/seed-000/CUCM7-PUB.bbbburns.lab.pem "
               "--subjects CUCM7-PUB.bbbburns.lab\n  sipsim serve scenarios/seed-000-self-signed.toml --node CUCM8-Publisher",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("scenario", type=Path, nargs="?", help="a scenario: serve one of its nodes (with --node)")
    p.add_argument("--node", metavar="NAME", help="the scenario's node to run")
    p.add_argument("--port-offset", type=int, default=0, metavar="N", help="with a scenario: add N to its ports")
    p.add_argument("--listen", default="127.0.0.1:5061", metavar="HOST:PORT", help="address and port (default 127.0.0.1:5061)")
    add_tls_flags(p, server=True)
    p.add_argument("--answer", type=int, default=200, metavar="CODE",
                   help="final answer to every INVITE: 200 (default, with SDP) or an error such as 486, 503")
    p.add_argument("--hold", type=float, metavar="S", help="hang up (BYE) answered calls after S seconds")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    lim = p.add_argument_group("limits (docs/robustness.md; with SCENARIO: override the node's [cluster.node.limits])")
    lim.add_argument("--max-connections", type=int, metavar="N",
                     help="open inbound connections (default 1000); beyond, new ones are accepted and closed at once")
    lim.add_argument("--max-handshakes", type=int, metavar="N",
                     help="TLS handshakes in progress at once (default 100); beyond, a connection waits for a slot "
                          "within the handshake timeout, then is closed")
    lim.add_argument("--max-message-bytes", type=int, metavar="N",
                     help="largest SIP message accepted (default 65536); larger: 413 and close")
    p.add_argument("--quiet", action="store_true",
                   help=f"no line per connection or call, only a summary line per second (default: the first "
                        f"{FIRST_LINES} such lines, then the summary)")
    add_observer_flags(p)
    p.set_defaults(func=run)


#: lines printed one per connection / call before serve switches to one summary line per second
FIRST_LINES = 20


class EventLines:
    """What `serve` prints about connections and calls: the first ``first`` events one line each
    (none with ``quiet``), then one summary line per second that had events (``flush``)."""

    def __init__(self, console, first: int = FIRST_LINES, quiet: bool = False):
        self.console = console
        self.left = 0 if quiet else first
        self.counts: Counter[str] = Counter()
        self.node = ""

    def __call__(self, text: str, kind: str = "connection") -> None:
        if self.left > 0:
            self.left -= 1
            self.console.print(text, soft_wrap=True)
            if self.left == 0:
                self.console.print("(from now on one summary line per second; --quiet: summaries only)",
                                   soft_wrap=True, highlight=False)
            return
        self.counts[kind] += 1

    def flush(self) -> str | None:
        """The summary of the events counted since the last flush (printed; None when there were none)."""
        c = self.counts
        if not c:
            return None
        self.counts = Counter()
        conns = c["connection"] + c["connection_failed"]
        line = (f"{self.node + ': ' if self.node else ''}last second: {conns} connection{'s' * (conns != 1)}"
                + (f" ({c['connection_failed']} failed)" if c["connection_failed"] else "")
                + f", {c['call_answered']} call{'s' * (c['call_answered'] != 1)} answered, "
                  f"{c['call_failed']} failed")
        self.console.print(line, soft_wrap=True, highlight=False)
        return line

    async def run(self) -> None:
        """Flush once a second until cancelled (and once more then)."""
        try:
            while True:
                await trio.sleep(1.0)
                self.flush()
        finally:
            self.flush()


def run(args) -> int:
    console = make_console()
    if not 200 <= args.answer <= 699 or 200 < args.answer < 300:
        raise UserError(f"--answer {args.answer}: use 200 or a final error status from 300 to 699")
    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        names = [n.name for n in scenario.nodes()]
        if args.node not in names:
            raise UserError(f"{args.scenario}: give --node with one of its nodes: {', '.join(names)}")
        for cluster in scenario.clusters:
            cluster.nodes[:] = [dataclasses.replace(n, limits=limits_from_flags(n.limits, **_limit_flags(args)))
                                if n.name == args.node else n for n in cluster.nodes]
        runner, only = LabRunner(scenario, port_offset=args.port_offset), [args.node]
    else:
        host, port = parse_hostport(args.listen)
        pki, settings = endpoint_from(args, host, port, console)
        settings.limits = limits_from_flags(settings.limits, **_limit_flags(args))
        runner = LabRunner(endpoint_scenario(settings), pki=pki)
        only = [NODE]
    observers = observers_from(args)
    runner.observers = observers
    runner.server_transcripts = False   # serve writes no report: nobody reads the flights

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await runner.start_nodes(nursery, only=only)
            rt = runner.nodes[only[0]]
            lines = EventLines(console, quiet=args.quiet)
            lines.node = rt.node.name
            rt.on_event = lines
            nursery.start_soon(lines.run)
            if args.scenario is None:
                rt.answer_any, rt.hang_up_after = args.answer, args.hold
            plain = {rt.lab.port(p.incoming_port) for t in rt.lab.topology.trunks_on(rt.node)
                     for p in [rt.lab.topology.profile_of(t)] if p.device_security_mode == "non_secure"}
            for port in rt.ports:
                how = "TCP, Non Secure: calls from the trunks' destinations" if port in plain else \
                    "TLS, client certificate required"
                console.print(f"{rt.node.name} listening on {rt.node.address}:{port} ({how})"
                              f"{'' if args.duration is None else f' for {args.duration:g} s'}; Ctrl-C stops")
            await trio.sleep(args.duration if args.duration is not None else math.inf)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        observers.close()
    return 0


def _limit_flags(args) -> dict:
    return {"max_connections": args.max_connections, "max_handshakes": args.max_handshakes,
            "max_message_bytes": args.max_message_bytes}
