"""Faults during a run: a destination node dies mid-run; Ctrl-C during `sipsim run`. In every case each
call placed has exactly one outcome in the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import trio

from sipsim.lab.loader import load_scenario
from sipsim.runtime.runner import LabRunner
from tests.conftest import ROOT, SCENARIOS

SEED = SCENARIOS / "seed-000-self-signed.toml"


def seed_variant(tmp_path, certs_base, *, failover: bool, calls: str, run: str) -> object:
    text = SEED.read_text()
    text = text.replace('name = "seed-000"', f'name = "seed-000"\ncerts_dir = "{certs_base / "seed-000"}"', 1)
    text = text.replace('[run]\nhold = 0.2', f"[run]\n{run}", 1)
    if failover:
        text = text.replace('destinations = ["cucm7-sub1.bbbburns.lab:5061", "cucm7-pub.bbbburns.lab:5061"]',
                            'destinations = ["cucm7-sub1.bbbburns.lab:5061", "cucm7-pub.bbbburns.lab:5061"]\n'
                            '  failover = true', 1)
    text = text[:text.index("[[call]]")] + calls
    path = tmp_path / "seed-faults.toml"
    path.write_text(text)
    return path


def one_outcome_each(calls, placed: int) -> None:
    assert sorted(c.id for c in calls) == list(range(1, placed + 1))
    for c in calls:
        assert c.outcome in ("answered", "failed")
        assert (c.outcome == "answered") == (c.reason is None), (c.id, c.outcome, c.reason)


@pytest.mark.parametrize("failover", [False, True])
async def test_a_destination_node_killed_mid_run(tmp_path, certs_base, port_offset, failover):
    """Cluster 2 calls cluster 1 over two destinations (SUB1, PUB); SUB1 dies 0.5 s into the run."""
    path = seed_variant(tmp_path, certs_base, failover=failover,
                        calls='[[call]]\nfrom = "8511001"\nto = "7131001"\nrepeat = 30\n',
                        run="hold = 0.3\nconcurrency = 4\ninterval = 0.05")
    runner = LabRunner(load_scenario(path), port_offset=port_offset, base=certs_base)
    killed_at = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            async def kill_later():
                def answered_on_sub1() -> int:  # calls up on SUB1: its 200 was ACKed, so the caller saw it
                    rt = runner.nodes.get("CUCM7-SUB1")
                    return 0 if rt is None else sum(1 for c in rt.endpoint.calls.values()
                                                    if c.role == "uas" and c.state == "confirmed")

                while answered_on_sub1() < 2:
                    await trio.sleep(0.01)  # SUB1 has calls up
                runner.nodes["CUCM7-SUB1"].stop()
                killed_at.append(trio.current_time() - runner._t_start)

            nursery.start_soon(kill_later)
            result = await runner.run()
    calls = result.calls
    one_outcome_each(calls, 30)
    # placed once the caller has seen SUB1's connection go (a call placed in between, on the pooled
    # connection, may still fail with connection_lost)
    late = [c for c in calls if c.started_at > killed_at[0] + 0.3]
    assert late
    if failover:
        # every call goes through: to PUB directly, or to PUB after SUB1 refused
        for c in late:
            assert c.outcome == "answered" and c.destination_node == "CUCM7-PUB", (c.id, c.reason, c.detail,
                                                                                   c.started_at, killed_at)
        assert any(len(c.attempts) == 2 and c.attempts[0].reason == "connect_refused" for c in late)
    else:
        to_sub1 = [c for c in late if c.destination_node == "CUCM7-SUB1"]
        assert to_sub1 and all(c.reason in ("connect_refused", "timeout") for c in to_sub1), \
            [(c.id, c.reason) for c in to_sub1]
        assert all(c.outcome == "answered" for c in late if c.destination_node == "CUCM7-PUB")
    # calls that were up on SUB1 when it died: answered, then ended by the lost connection (one record)
    up = [c for c in calls if c.destination_node == "CUCM7-SUB1" and c.outcome == "answered"]
    assert len(up) >= 2 and all(c.started_at < killed_at[0] for c in up)


def test_ctrl_c_during_sipsim_run_hangs_up_and_writes_the_report(tmp_path, certs_base, port_offset):
    """`sipsim run` with calls held 5 s; SIGINT 1.5 s in: every answered call gets BYE now (the peer
    answers it), every call placed has one outcome in the report, and the exit is 130."""
    path = seed_variant(tmp_path, certs_base, failover=False,
                        calls='[[call]]\nfrom = "7131001"\nto = "8511001"\nrepeat = 6\n\n'
                              '[[call]]\nfrom = "8511001"\nto = "7131001"\nrepeat = 6\n',
                        run="hold = 5\nconcurrency = 6")
    # certificates first, so the run starts at once
    trio.run(_make_certs, path, certs_base)
    report = tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "sipsim", "run", str(path), "--report", str(report), "--quiet",
                             "--port-offset", str(port_offset)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2.0)
        assert proc.poll() is None, proc.communicate()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, out.decode()[-2000:], err.decode()[-2000:])
    assert "Traceback" not in err.decode()
    assert took < 4.0  # not the 5 s holds
    data = json.loads(report.read_text())
    assert data["interrupted"] is True
    calls = data["calls"]
    assert calls, out.decode()
    ids = [c["id"] for c in calls]
    assert sorted(ids) == list(range(1, len(ids) + 1))  # each call placed: one record
    answered = [c for c in calls if c["outcome"] == "answered"]
    assert answered
    for c in calls:
        assert (c["outcome"] == "answered") == (c["reason"] is None), c
    for c in answered:
        assert "interrupted" in (c["detail"] or ""), c["detail"]
        lines = [m["dir"] + " " + m["line"] for m in c["messages"]]
        bye = next(i for i, line in enumerate(lines) if line.startswith("out BYE "))
        assert any(line == "in SIP/2.0 200 OK" for line in lines[bye + 1:]), lines  # the peer saw the BYE


async def _make_certs(path, certs_base):
    from sipsim.runtime.context import prepare_pki

    prepare_pki(load_scenario(path), base=certs_base)
