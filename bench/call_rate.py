"""Calls/s (INVITE…BYE, 0 failures) into one `sipsim serve` over ONE persistent mutual-TLS connection,
driven by `sipsim call --count N --concurrency C` (two processes on loopback). Target ≥ 3,000.

Also a sipp-over-TCP comparison line when sipsim has a Non Secure (TCP) mode and sipp is on PATH."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402



def sipp_tcp_line(count: int, concurrency: int) -> tuple[str, dict]:
    """sipp (no TLS in Debian) as the caller over a Non Secure (TCP) trunk into `sipsim serve
    scenarios/non-secure-tcp.toml --node CUCM-A` (sipp bound to 127.0.0.93, the trunk's destination)."""
    sipp = shutil.which("sipp")
    if sipp is None:
        return "sipp over TCP: skipped (sipp not on PATH)", {}
    log = subprocess.run(["git", "log", "--oneline", "-i", "-E", "--grep=non[_ ]secure"],
                         cwd=c.ROOT, capture_output=True, text=True, timeout=10).stdout
    scenario = c.ROOT / "scenarios" / "non-secure-tcp.toml"
    if not log.strip() or not scenario.exists():
        return ("sipp over TCP: skipped (Debian's sipp has no TLS and this checkout has no Non Secure (TCP) "
                "mode)"), {}
    import random

    offset = random.randrange(3000, 20000)
    port = 5060 + offset
    serve = subprocess.Popen(c.PY + ["serve", str(scenario), "--node", "CUCM-A", "--port-offset", str(offset),
                                     "--duration", "60"], cwd=c.OUT / "work", stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=c.ENV)
    c._children.append(serve)
    try:
        line = serve.stdout.readline().decode(errors="replace")
        if "listening" not in line:
            return f"sipp over TCP: skipped (serve did not start: {line.strip()})", {}
        import threading

        threading.Thread(target=lambda: [None for _ in serve.stdout], daemon=True).start()
        t0 = time.monotonic()
        done = subprocess.run([sipp, "-sn", "uac", "-t", "t1", "-m", str(count), "-l", str(concurrency),
                               "-r", "100000", "-d", "0", f"127.0.0.91:{port}", "-s", "7141001",
                               "-i", "127.0.0.93", "-p", str(port), "-timeout", "50", "-timeout_error",
                               "-nostdin", "-trace_stat", "-stf", str(c.OUT / "work" / "sipp-stat.csv")],
                              cwd=c.OUT / "work", capture_output=True, timeout=60)
        wall = time.monotonic() - t0
        rate = round(count / wall, 1)
        data = {"sipp_calls_per_s": rate, "sipp_rc": done.returncode, "count": count, "concurrency": concurrency}
        ok = "0 failures" if done.returncode == 0 else f"sipp exit {done.returncode} (some calls failed)"
        return (f"sipp uac over TCP into sipsim serve (Non Secure): {rate} calls/s, {count} calls, -l {concurrency}, "
                f"{ok} (one run, wall time incl. sipp start)"), data
    except subprocess.TimeoutExpired:
        return "sipp over TCP: timed out", {}
    finally:
        c.stop(serve)


def main() -> int:
    a, data = c.call_rate_runs(__doc__, 10000, 100, [])  # ~3 s a run (3,000 until round 6: ~1 s runs varied ±5 %)
    sipp, sipp_data = sipp_tcp_line(a.count, a.concurrency)
    c.write("call_rate", {"metric": "calls/s, one persistent mutual-TLS connection", "target": 3000, **data,
                          "sipp": sipp, "sipp_tcp": sipp_data})
    print(f"call_rate: {c.fmt(data['summary'], 'calls/s')} — {a.count} calls, concurrency {a.concurrency}, one TLS "
          f"connection, {data['failures']}; target ≥ 3000 | server: "
          f"{c.fmt(data['server_calls_per_cpu_s'], 'calls per server CPU-s')} | {sipp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
