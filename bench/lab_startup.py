"""16-destination lab with certificates present: start → first call answered, in-process. Target < 1 s.

scenarios/bench-16-destinations.toml (HQ-PUB + 16 branch nodes at 127.0.3.x); its certificates are
made once under out/bench/work/ before timing. Each run is a fresh Python process (nothing cached in
memory), timed from loading the scenario to the first 200 OK (the call's setup time added to the
moment it was placed). Prints phases: load, start (PKI check + 17 nodes' TLS contexts + listeners),
first answer."""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

SCENARIO = c.ROOT / "scenarios" / "bench-16-destinations.toml"


def child(port_offset: int) -> dict:
    t0 = time.perf_counter()
    import trio

    from sipsim.lab.loader import load_scenario
    from sipsim.runtime.runner import LabRunner

    t_import = time.perf_counter()
    scenario = load_scenario(SCENARIO)
    t_load = time.perf_counter()
    runner = LabRunner(scenario, port_offset=port_offset, base=c.OUT / "work")
    out = {}

    async def main():
        async with trio.open_nursery() as nursery:
            await runner.start_nodes(nursery)
            out["t_started"] = time.perf_counter()
            records = await runner.place_all()
            nursery.cancel_scope.cancel()
        rec = records[0]
        out["outcome"] = rec.outcome
        out["setup_ms"] = rec.setup_ms

    trio.run(main)
    answered = out["t_started"] + out["setup_ms"] / 1000.0
    return {"import_s": round(t_import - t0, 3), "load_s": round(t_load - t_import, 3),
            "start_s": round(out["t_started"] - t_load, 3), "first_call_setup_s": round(out["setup_ms"] / 1000, 3),
            "start_to_answer_s": round(answered - t_import, 3), "outcome": out["outcome"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if a.child is not None:
        print(json.dumps(child(a.child)))
        return 0
    c.hard_timeout(150)
    work = c.OUT / "work"
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(c.PY + ["certs", "init", str(SCENARIO)], cwd=work, check=True, capture_output=True,
                   timeout=120, env=c.ENV)
    runs = []
    for _ in range(a.runs):
        offset = random.randrange(3000, 20000)
        proc = subprocess.run([sys.executable, __file__, "--child", str(offset)], capture_output=True, text=True,
                              timeout=60, env=c.ENV)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            continue
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    s = c.summarise([r["start_to_answer_s"] for r in runs])
    phases = {k: c.summarise([r[k] for r in runs])["median"] for k in ("load_s", "start_s", "first_call_setup_s")}
    c.write("lab_startup", {"metric": "16-destination lab, certificates present: start → first call answered",
                            "target_s": 1.0, "summary": s, "phase_medians": phases, "runs": runs})
    print(f"lab_startup: {c.fmt(s, 's', 3)} — 17 nodes, 16 destinations, certs present (load {phases['load_s']:.3f} s, "
          f"start {phases['start_s']:.3f} s, first call {phases['first_call_setup_s']:.3f} s; imports excluded); "
          f"answered: {sum(r['outcome'] == 'answered' for r in runs)}/{len(runs)}; target < 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
