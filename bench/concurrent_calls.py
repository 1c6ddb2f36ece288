"""Concurrent calls held across 16 destinations, 0 failures. Target ≥ 10,000.

In-process: scenarios/bench-16-destinations.toml plus a [[load]] of COUNT calls with concurrency
COUNT and a hold long enough for every call to be up at once (HQ-PUB → 16 branch nodes, one TLS
connection each, round robin). A sampler counts, every 100 ms, the calls HQ-PUB has answered and not
yet ended (its runner waiters: answered and not ended) – the peak is the figure. Bounded: the
scenario's call_timeout and a hard timeout."""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

SCENARIO = c.ROOT / "scenarios" / "bench-16-destinations.toml"


def child(count: int, hold: float, port_offset: int) -> dict:
    import trio

    from sipsim.lab.loader import load_scenario
    from sipsim.runtime.runner import LabRunner

    work = c.OUT / "work"
    text = SCENARIO.read_text().split("[[call]]")[0]  # the lab without its single call
    text += (f'\n[[load]]\nfrom = "1000001"\nto = "2000001"\ncount = {count}\nconcurrency = {count}\n'
             f'hold = {hold}\n')
    path = work / "bench-16-concurrent.toml"
    path.write_text(text)
    scenario = load_scenario(path)
    runner = LabRunner(scenario, port_offset=port_offset, base=work)
    stats = {"peak": 0, "samples": []}

    async def sampler():
        hq = runner.nodes["HQ-PUB"]
        t0 = trio.current_time()
        while True:
            up = sum(1 for w in list(hq.waiters.values()) if w.answered and not w.ended.is_set())
            stats["peak"] = max(stats["peak"], up)
            stats["samples"].append((round(trio.current_time() - t0, 2), up))
            await trio.sleep(0.1)

    async def main():
        async with trio.open_nursery() as nursery:
            await runner.start_nodes(nursery)
            t0 = time.perf_counter()
            nursery.start_soon(sampler)
            records = await runner.place_all()
            stats["wall_s"] = round(time.perf_counter() - t0, 2)
            nursery.cancel_scope.cancel()
        return records

    records = trio.run(main)
    failed = [r for r in records if r.outcome != "answered"]
    reasons: dict[str, int] = {}
    for r in failed:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    samples = stats["samples"]
    return {"calls": len(records), "answered": len(records) - len(failed), "failed": len(failed),
            "failed_by_reason": reasons, "peak_concurrent_answered": stats["peak"], "hold_s": hold,
            "wall_s": stats["wall_s"], "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "ramp": samples[:: max(1, len(samples) // 40)]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--hold", type=float, default=55.0)
    ap.add_argument("--runs", type=int, default=1)  # one run takes ~2.5 min: make bench stays < 10 min
    ap.add_argument("--offset", type=int, default=0)
    a = ap.parse_args()
    c.raise_nofile(8192)
    if a.child:
        print(json.dumps(child(a.count, a.hold, a.offset)))
        return 0
    c.hard_timeout(100 + int(a.hold * 2.5) * a.runs)
    work = c.OUT / "work"
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(c.PY + ["certs", "init", str(SCENARIO)], cwd=work, check=True, capture_output=True,
                   timeout=120, env=c.ENV)
    runs = []
    for _ in range(a.runs):
        proc = subprocess.run([sys.executable, __file__, "--child", "--count", str(a.count), "--hold", str(a.hold),
                               "--offset", str(random.randrange(3000, 20000))], capture_output=True, text=True,
                              timeout=60 + a.hold * 2.5, env=c.ENV)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            continue
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    s = c.summarise([r["peak_concurrent_answered"] for r in runs] or [0])
    c.write("concurrent_calls", {"metric": "concurrent calls held across 16 destinations, 0 failures",
                                 "target": 10000, "count": a.count, "summary": s, "runs": runs})
    fails = [r["failed"] for r in runs]
    print(f"concurrent_calls: {c.fmt(s, 'calls up at once')} — {a.count} calls, concurrency {a.count}, hold "
          f"{a.hold:g} s, 16 destinations; failures per run {fails}; peak RSS "
          f"{max((r['max_rss_kb'] for r in runs), default=0) // 1024} MB; target ≥ 10000 with 0 failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
