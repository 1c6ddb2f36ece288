"""Calls/s (INVITE…BYE, 0 failures) into one `sipsim serve` with a NEW mutual-TLS connection per call,
driven by `sipsim call --new-connection --count N --concurrency C` (two processes on loopback).
Target ≥ 400 (sipp's figure with TLS per call, native: ~420)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


one_run = c.call_run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    c.hard_timeout(240)
    certs = c.seed_certs()
    runs = []
    for _ in range(a.runs):
        runs.append(one_run(certs, a.count, a.concurrency, ["--new-connection"], timeout=70))
    ok = [r for r in runs if r["failed"] == 0 and r["answered"] == a.count]
    rates = [r["calls_per_s"] for r in runs]
    s = c.summarise(rates)
    c.write("call_rate_new_connection", {"metric": "calls/s, a new mutual-TLS connection per call", "target": 400,
                          "count": a.count, "concurrency": a.concurrency, "summary": s, "runs": runs,
                          "all_runs_zero_failures": len(ok) == len(runs)})
    print(f"call_rate_new_connection: {c.fmt(s, 'calls/s')} — {a.count} calls, concurrency {a.concurrency}, "
          f"a new TLS connection per call, "
          f"{'0 failures' if len(ok) == len(runs) else 'FAILURES: ' + str([r['failed'] for r in runs])}; "
          "target ≥ 400")
    return 0


if __name__ == "__main__":
    sys.exit(main())
