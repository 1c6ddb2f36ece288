"""Full mutual-TLS handshakes (RSA-2048) per server CPU-second, TLS 1.2 and TLS 1.3. Target ≥ 600.

Server: `sipsim serve` (a subprocess; its CPU time is utime+stime from /proc/PID/stat, read before and
after the burst). Client: one Python process (this script with --client) opening N connections with
sipsim.tls.TLSStream in trio, 8 at a time; each does a full handshake (no session resumption), waits
for the server's verdict (TLS 1.3: its NewSessionTickets, `wait_peer_verdict`), and closes.

1,000 handshakes per run (200 until round 6): a fresh server's fixed costs — its first 20 console
lines, code paths run for the first time — were ~4 % of a 200-handshake run; the figure is the
steady state of a loaded server."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


async def _client_burst(certs: Path, host: str, port: int, version: str, n: int, parallel: int) -> int:
    import trio

    from sipsim.tls import TLSStream
    from sipsim.tls.config import TLSConfig
    from sipsim.tls.context import build_context

    cfg = TLSConfig(cert_file=certs / "CUCM7-PUB.bbbburns.lab.pem", key_file=certs / "CUCM7-PUB.bbbburns.lab.key",
                    trust_files=(certs / "CUCM8-Publisher.bbbburns.lab.pem",), min_version=version,
                    max_version=version)
    ctx = build_context(cfg, server_side=False)
    ok = 0
    todo = iter(range(n))

    async def worker():
        nonlocal ok
        for _ in todo:
            tcp = await trio.open_tcp_stream(host, port, local_address=c.CLIENT_ADDR)
            tls = TLSStream(tcp, ctx, server_side=False, local=tcp.socket.getsockname()[:2], remote=(host, port))
            try:
                await tls.do_handshake()
                with trio.move_on_after(1):   # TLS 1.3: the server judges our certificate after our Finished
                    if await tls.wait_peer_verdict():
                        ok += 1
            finally:
                with trio.move_on_after(1):
                    await tls.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(parallel):
            nursery.start_soon(worker)
    return ok


def client_main(a) -> int:
    import trio

    ok = trio.run(_client_burst, Path(a.certs), c.SERVER_ADDR, a.port, a.version, a.n, a.parallel)
    print(ok)
    return 0


def lean_server_main(a) -> int:
    """A featureless TLS server: the context `sipsim serve` builds, trio's lowlevel socket waits and
    pyOpenSSL over memory BIOs — no transcript, callbacks, records, SIP or node. Not sipsim: the
    ceiling of this design (trio + pyOpenSSL) on this machine, printed beside sipsim's figure."""
    import socket

    import trio
    from OpenSSL import SSL
    from OpenSSL._util import lib as _lib

    from sipsim.tls.config import TLSConfig
    from sipsim.tls.context import build_context
    from sipsim.tls.hello import offers_tls13

    certs = Path(a.certs)
    ctx = build_context(TLSConfig(cert_file=certs / "CUCM8-Publisher.bbbburns.lab.pem",
                                  key_file=certs / "CUCM8-Publisher.bbbburns.lab.key",
                                  trust_files=(certs / "CUCM7-PUB.bbbburns.lab.pem",), min_version="1.2",
                                  max_version="1.3"), server_side=True)

    async def receive(sock) -> bytes:
        while True:
            try:
                return sock.recv(65536)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)

    def flush(conn, sock) -> None:
        try:
            sock.send(conn.bio_read(65536))
        except SSL.WantReadError:
            pass

    async def handle(sock) -> None:
        conn = SSL.Connection(ctx)
        conn.set_accept_state()
        first = True
        try:
            while True:                      # the handshake
                try:
                    conn.do_handshake()
                    flush(conn, sock)
                    break
                except SSL.WantReadError:
                    flush(conn, sock)
                data = await receive(sock)
                if not data:
                    return
                if first and offers_tls13(data):    # stateful TLS 1.3 tickets, as sipsim's server
                    _lib.SSL_set_options(conn._ssl, _lib.SSL_OP_NO_TICKET)
                first = False
                conn.bio_write(data)
            while data := await receive(sock):   # until the peer's close_notify, answered
                conn.bio_write(data)
                try:
                    conn.recv(65536)
                except SSL.WantReadError:
                    continue
                except SSL.ZeroReturnError:
                    try:
                        conn.shutdown()
                    except SSL.Error:
                        pass
                    flush(conn, sock)
                    break
        except (SSL.Error, OSError):
            pass
        finally:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    async def serve() -> None:
        listener = socket.socket()
        listener.bind((c.SERVER_ADDR, a.port))
        listener.listen(128)
        listener.setblocking(False)
        print("listening on", a.port, flush=True)
        async with trio.open_nursery() as nursery:
            while True:
                await trio.lowlevel.wait_readable(listener)
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    nursery.start_soon(handle, sock)

    trio.run(serve)
    return 0


def one_run(certs: Path, version: str, n: int, lean: bool = False) -> dict:
    port = c.free_port()
    if lean:
        server = subprocess.Popen([sys.executable, __file__, "--lean-server", "--certs", str(certs), "--port",
                                   str(port)], stdout=subprocess.PIPE, text=True, env=c.ENV)
        c._children.append(server)
        server.stdout.readline()
    else:
        server = c.start_server(certs, port, extra=["--tls-min", "1.2", "--tls-max", "1.3"])
    try:
        time.sleep(0.3)
        cpu0, t0 = c.cpu_seconds(server.pid), time.monotonic()
        proc = subprocess.run([sys.executable, __file__, "--client", "--certs", str(certs), "--port", str(port),
                               "--version", version, "--n", str(n)], capture_output=True, text=True, timeout=120,
                              env=c.ENV)
        time.sleep(0.3)  # the server finishes with the last connections
        cpu1, wall = c.cpu_seconds(server.pid), time.monotonic() - t0
        ok = int(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else 0
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
        cpu = cpu1 - cpu0
        return {"version": version, "handshakes": ok, "server_cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                "per_cpu_s": round(ok / cpu, 1) if cpu > 0 else None,
                "server_rss_kb": c.rss_kb(server.pid)}
    finally:
        c.stop(server)


def openssl_alone(certs: Path, version: str, n: int = 300) -> float:
    """The same handshake with OpenSSL alone: the server's two contexts as `sipsim serve` builds
    them, pyOpenSSL connections over memory BIOs in this process, no sockets, no trio, no sipsim
    callbacks; the server side's CPU time only. A reference for this machine at this moment (the
    figures above drift with it): what fraction of OpenSSL's own rate sipsim's server reaches."""
    from OpenSSL import SSL
    from OpenSSL._util import lib as _lib

    from sipsim.tls.config import TLSConfig
    from sipsim.tls.context import build_context

    def cfg(me: str, peer: str) -> TLSConfig:
        return TLSConfig(cert_file=certs / f"{me}.pem", key_file=certs / f"{me}.key",
                         trust_files=(certs / f"{peer}.pem",), min_version=version, max_version=version)

    cctx = build_context(cfg("CUCM7-PUB.bbbburns.lab", "CUCM8-Publisher.bbbburns.lab"), server_side=False)
    sctx = build_context(cfg("CUCM8-Publisher.bbbburns.lab", "CUCM7-PUB.bbbburns.lab"), server_side=True)
    spent = 0.0

    def pump(a, b):
        try:
            while True:
                b.bio_write(a.bio_read(65536))
        except SSL.WantReadError:
            pass

    def server_step(fn):
        nonlocal spent
        t = time.process_time()
        try:
            fn()
        except SSL.WantReadError:
            pass
        spent += time.process_time() - t

    def one():
        cl, sv = SSL.Connection(cctx), SSL.Connection(sctx)
        cl.set_connect_state()
        server_step(sv.set_accept_state)
        if version == "1.3":          # stateful tickets, as sipsim's server issues them under TLS 1.3
            _lib.SSL_set_options(sv._ssl, _lib.SSL_OP_NO_TICKET)
        for _ in range(4):
            try:
                cl.do_handshake()
            except SSL.WantReadError:
                pass
            pump(cl, sv)
            server_step(sv.do_handshake)
            pump(sv, cl)
        server_step(lambda: sv.recv(1))      # TLS 1.3: the client's Finished, then the tickets

    for _ in range(20):
        one()
    spent = 0.0
    for _ in range(n):
        one()
    return n / spent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--lean-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--certs")
    ap.add_argument("--port", type=int)
    ap.add_argument("--version", default="1.2")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if a.client:
        return client_main(a)
    if a.lean_server:
        return lean_server_main(a)
    c.hard_timeout(300)
    certs = c.seed_certs()
    out, line = {}, []
    for version in ("1.2", "1.3"):
        runs, lean_runs = [], []
        for _ in range(a.runs):   # interleaved: both servers see the machine at the same speed
            runs.append(one_run(certs, version, a.n))
            lean_runs.append(one_run(certs, version, a.n, lean=True))
        s = c.summarise([r["per_cpu_s"] or 0.0 for r in runs])
        lean = c.summarise([r["per_cpu_s"] or 0.0 for r in lean_runs])
        alone = openssl_alone(certs, version)
        out[f"tls{version}"] = {"summary": s, "runs": runs, "lean_server": lean, "lean_runs": lean_runs,
                                "fraction_of_lean_server": round(s["median"] / lean["median"], 3),
                                "openssl_alone_per_cpu_s": round(alone, 1),
                                "fraction_of_openssl_alone": round(s["median"] / alone, 3)}
        line.append(f"TLS {version}: {c.fmt(s, 'handshakes/server-CPU-s')} = {100 * s['median'] / lean['median']:.0f} % "
                    f"of a featureless trio+pyOpenSSL server ({lean['median']:.0f}) and "
                    f"{100 * s['median'] / alone:.0f} % of OpenSSL alone ({alone:.0f}/CPU-s here, now)")
    c.write("handshakes", {"metric": "full mutual-TLS handshakes (RSA-2048) per server CPU-second", "target": 600,
                           "n_per_run": a.n, **out})
    print("handshakes: " + "; ".join(line) + f" — {a.n} full handshakes per run; target ≥ 600")
    return 0


if __name__ == "__main__":
    sys.exit(main())
