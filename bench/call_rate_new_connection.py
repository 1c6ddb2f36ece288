"""Calls/s (INVITE…BYE, 0 failures) into one `sipsim serve` with a NEW mutual-TLS connection per call,
driven by `sipsim call --new-connection --count N --concurrency C` (two processes on loopback).
Target ≥ 400 (sipp's figure with TLS per call, native: ~420)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402


def main() -> int:
    a, data = c.call_rate_runs(__doc__, 1000, 20, ["--new-connection"])  # ~2.5 s a run (400 until round 6)
    c.write("call_rate_new_connection", {"metric": "calls/s, a new mutual-TLS connection per call", "target": 400,
                                         **data})
    print(f"call_rate_new_connection: {c.fmt(data['summary'], 'calls/s')} — {a.count} calls, concurrency "
          f"{a.concurrency}, a new TLS connection per call, {data['failures']}; target ≥ 400 | server: "
          f"{c.fmt(data['server_calls_per_cpu_s'], 'calls per server CPU-s')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
