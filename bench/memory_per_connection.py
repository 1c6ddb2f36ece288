"""Memory per idle mutual-TLS connection: `sipsim serve`'s RSS (/proc/PID/status VmRSS) before and
after 1,000 idle connections (handshake done, no SIP) held by one client process. Target ≤ 50 kB.
RLIMIT_NOFILE is raised in both processes (the server inherits this script's limit)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


async def _hold(certs: Path, port: int, n: int, parallel: int) -> None:
    import trio

    from sipsim.tls import TLSStream
    from sipsim.tls.config import TLSConfig
    from sipsim.tls.context import build_context

    cfg = TLSConfig(cert_file=certs / "CUCM7-PUB.bbbburns.lab.pem", key_file=certs / "CUCM7-PUB.bbbburns.lab.key",
                    trust_files=(certs / "CUCM8-Publisher.bbbburns.lab.pem",))
    ctx = build_context(cfg, server_side=False)
    streams = []
    todo = iter(range(n))

    async def worker():
        for _ in todo:
            tcp = await trio.open_tcp_stream(c.SERVER_ADDR, port, local_address=c.CLIENT_ADDR)
            tls = TLSStream(tcp, ctx, server_side=False)
            await tls.do_handshake()
            with trio.move_on_after(0.02):  # TLS 1.3: the server's verdict on our certificate
                await tls.receive_some(1)
            streams.append(tls)

    async with trio.open_nursery() as nursery:
        for _ in range(parallel):
            nursery.start_soon(worker)
    print(f"ready {len(streams)}", flush=True)
    await trio.to_thread.run_sync(sys.stdin.readline)  # hold until the parent says so


def one_run(certs: Path, n: int) -> dict:
    port = c.free_port()
    server = c.start_server(certs, port)
    try:
        time.sleep(0.5)
        # warm the server up (first connection builds lazily what every later one shares)
        warm = subprocess.Popen([sys.executable, __file__, "--client", "--certs", str(certs), "--port", str(port),
                                 "--n", "20"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=c.ENV)
        warm.stdout.readline()
        warm.stdin.close()
        warm.wait(timeout=20)
        time.sleep(0.5)
        before = c.rss_kb(server.pid)
        client = subprocess.Popen([sys.executable, __file__, "--client", "--certs", str(certs), "--port", str(port),
                                   "--n", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=c.ENV)
        c._children.append(client)
        line = client.stdout.readline()
        held = int(line.split()[1]) if line.startswith("ready") else 0
        time.sleep(1.0)
        after = c.rss_kb(server.pid)
        client.stdin.close()
        client.wait(timeout=30)
        return {"connections": held, "rss_before_kb": before, "rss_after_kb": after,
                "per_connection_kb": round((after - before) / held, 1) if held else None}
    finally:
        c.stop(server)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--certs")
    ap.add_argument("--port", type=int)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    c.raise_nofile(8192)
    if a.client:
        import trio

        trio.run(_hold, Path(a.certs), a.port, a.n, 16)
        return 0
    c.hard_timeout(200)
    certs = c.seed_certs()
    runs = [one_run(certs, a.n) for _ in range(a.runs)]
    s = c.summarise([r["per_connection_kb"] or 0.0 for r in runs])
    c.write("memory_per_connection", {"metric": "server RSS per idle mutual-TLS connection", "target_kb": 50,
                                      "connections": a.n, "summary": s, "runs": runs})
    print(f"memory_per_connection: {c.fmt(s, 'kB', 1)} — server RSS growth over {a.n} idle mutual-TLS "
          f"connections; target ≤ 50 kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
