"""`sipsim ping sip:HOST:PORT`: OPTIONS over mutual TLS, the way CUCM's OPTIONS ping judges a
destination — up on any response but 408/503, down otherwise, with CUCM's reason code."""

from __future__ import annotations

import trio

from sipsim.commands._observe import add_observer_flags, observers_from
from sipsim.commands._tlsflags import add_tls_flags, endpoint_from
from sipsim.lab.ping import verdict
from sipsim.report.table import make_console
from sipsim.runtime.node import ConnectFailure
from sipsim.runtime.runner import LabRunner
from sipsim.runtime.single import NODE, endpoint_scenario, parse_sip_uri


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ping", help="OPTIONS over mutual TLS: is the destination up, and why not",
        description="Open a mutual-TLS connection, send OPTIONS and judge the answer as CUCM's OPTIONS ping "
                    "does. Exit 0 when up, 1 when down (with CUCM's reason: Local=1/2/3, Remote=408/503).",
        epilog="example:\n  sipsim ping sip:127.0.0.21:5061 --local 127.0.0.11 --cert certs/seed-000/CUCM7-PUB.bbbburns.lab.pem "
               "--key certs/seed-000/CUCM7-PUB.bbbburns.lab.key --trust certs/seed-000/CUCM8-Publisher.bbbburns.lab.pem",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("uri", help="sip:HOST:PORT (port 5061 when omitted)")
    p.add_argument("--local", default="127.0.0.1", metavar="ADDRESS", help="source address (default 127.0.0.1)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="seconds to wait for the answer (CUCM waits its whole retry schedule, 19.5 s)")
    add_tls_flags(p, server=False)
    add_observer_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    console = make_console()
    _, host, port = parse_sip_uri(args.uri)
    pki, settings = endpoint_from(args, args.local, 5061, console)
    scenario = endpoint_scenario(settings, target=(host, port))
    observers = observers_from(args)
    runner = LabRunner(scenario, pki=pki, observers=observers)
    outcome: dict = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await runner.start_nodes(nursery, listen=False)
            rt = runner.nodes[NODE]
            trunk = scenario.clusters[0].trunks[0]
            t0 = trio.current_time()
            try:
                conn = await rt.connect(trunk, host, port, None)
            except ConnectFailure as f:
                outcome.update(status=None, reason=f.reason, detail=f.detail, record=f.record)
            else:
                outcome["record"] = conn.record
                waiter = rt.send_options(conn, f"sip:{host}:{port}")
                with trio.move_on_after(args.timeout):
                    await waiter.final.wait()
                if conn.failure is not None:  # TLS 1.3: the server rejected us after our handshake
                    outcome.update(status=None, reason=conn.failure.reason, detail=conn.failure.detail)
                else:
                    outcome.update(status=waiter.status, reason=waiter.reason if waiter.final.is_set() else "timeout",
                                   detail=None)
            outcome["ms"] = (trio.current_time() - t0) * 1000
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        observers.close()
    record = outcome.get("record")
    target = f"{host}:{port}"
    if record is not None:
        if record.version:
            group = f" {record.group}" if record.group else ""
            console.print(f"TLS {record.version} {record.cipher or ''}{group} with {target} "
                          f"({record.handshake_ms or 0:.1f} ms)")
        else:
            console.print(f"TLS handshake with {target} did not complete")
        for flight in record.transcript:
            arrow = "→" if flight.direction == "sent" else "←"
            console.print(f"  {arrow} {', '.join(flight.messages)}")
        if record.peer_chain:
            leaf = record.peer_chain[0]
            console.print(f"peer certificate: {leaf.subject}")
            console.print(f"  issuer {leaf.issuer}; serial {leaf.serial}; valid {leaf.not_before} to {leaf.not_after}")
            if leaf.sans:
                console.print(f"  SAN {', '.join(leaf.sans)}")
            console.print(f"  SHA-256 {leaf.sha256}")
    state, cause = verdict(outcome.get("status"), outcome.get("reason"))
    if outcome.get("status") is not None:
        console.print(f"response: {outcome['status']} after {outcome['ms']:.1f} ms")
    if state == "up":
        console.print(f"[green]{target} is up[/] (any answer but 408/503 counts, as CUCM's OPTIONS ping)")
        return 0
    console.print(f"[red]{target} is down: {cause}[/] ({outcome.get('reason')})", soft_wrap=True)
    if outcome.get("detail"):
        console.print(outcome["detail"], soft_wrap=True)
    return 1
