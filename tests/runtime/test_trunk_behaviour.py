"""Trunk behaviours end to end on loopback: phones, digit analysis, distribution, origin, SRV, faults."""

import pytest

from sipsim.lab.loader import load_scenario
from sipsim.runtime.runner import LabRunner

LAB = """
[lab]
name = "behaviour"
[run]
hold = 0.0
no_answer_timeout = 0.5
seed = {seed}

[[cluster]]
name = "A"
domain = "a.lab"
  [[cluster.node]]
  name = "a1"
  address = "127.0.0.101"
  tls = {{ handshake_timeout = {hs_timeout} }}
  [[cluster.node]]
  name = "a2"
  address = "127.0.0.106"
  [[cluster.security_profile]]
  name = "to-B"
  x509_subject_name = "b1.b.lab b2.b.lab b3.b.lab"
  [[cluster.trunk]]
  name = "T"
  security_profile = "to-B"
  callmanager_group = {cmg}
  {trunk_extra}
  [[cluster.route_pattern]]
  pattern = "2XXX"
  trunk = "T"
  [[cluster.phone]]
  dn = "1000"
  node = "a1"
  [[cluster.phone]]
  dn = "1001"
  node = "a2"

[[cluster]]
name = "B"
domain = "b.lab"
  [[cluster.node]]
  name = "b1"
  address = "127.0.0.102"
  {b1_extra}
  [[cluster.node]]
  name = "b2"
  address = "127.0.0.103"
  [[cluster.node]]
  name = "b3"
  address = "127.0.0.104"
  [[cluster.security_profile]]
  name = "to-A"
  x509_subject_name = "a1.a.lab a2.a.lab"
  [[cluster.trunk]]
  name = "back"
  security_profile = "to-A"
  destinations = ["a1.a.lab:5061"]
  [[cluster.phone]]
  dn = "2000"
  node = "b1"
  [[cluster.phone]]
  dn = "2486"
  node = "b1"
  behaviour = "busy"
  [[cluster.phone]]
  dn = "2603"
  node = "b1"
  behaviour = "reject"
  [[cluster.phone]]
  dn = "2999"
  node = "b1"
  behaviour = "no_answer"
  [[cluster.phone]]
  dn = "2300"
  node = "b1"
  answer_delay = 0.3
{extra}
"""

DESTS = 'destinations = ["b1.b.lab:5061", "b2.b.lab:5061", "b3.b.lab:5061"]'


async def run(tmp_path, certs_base, port_offset, calls, *, trunk_extra=DESTS, b1_extra="", extra="",
              cmg='["a1"]', seed=1, hs_timeout=10.0):
    text = LAB.format(trunk_extra=trunk_extra, b1_extra=b1_extra, extra=extra + calls, cmg=cmg, seed=seed,
                      hs_timeout=hs_timeout)
    path = tmp_path / f"lab{seed}.toml"
    path.write_text(text.replace('name = "behaviour"', 'name = "behaviour"\ncerts_dir = "certs/behaviour"'))
    result = await LabRunner(load_scenario(path), port_offset=port_offset, base=certs_base).run()
    return result.calls


def calls(*pairs, repeat=1):
    return "".join(f'[[call]]\nfrom = "{a}"\nto = "{b}"\nrepeat = {repeat}\n' for a, b in pairs)


async def test_phone_behaviours_give_their_sip_answers(tmp_path, certs_base, port_offset):
    got = await run(tmp_path, certs_base, port_offset,
                    calls(("1000", "2486"), ("1000", "2603"), ("1000", "2999"), ("1000", "2300"), ("1000", "2777")),
                    trunk_extra='destinations = ["b1.b.lab:5061"]')
    by = {c.called: c for c in got}
    assert (by["2486"].status, by["2486"].reason) == (486, "user_busy")
    assert (by["2603"].status, by["2603"].reason) == (603, "call_rejected")
    assert by["2999"].reason == "no_answer" and by["2999"].status == 487 and by["2999"].setup_ms >= 500
    assert by["2300"].outcome == "answered" and by["2300"].setup_ms >= 300
    assert (by["2777"].status, by["2777"].reason) == (404, "unallocated_number")  # no such phone in B


async def test_unroutable_digits_fail_with_unallocated_number_before_any_connection(tmp_path, certs_base, port_offset):
    got = await run(tmp_path, certs_base, port_offset, calls(("1000", "9999")))
    assert got[0].reason == "unallocated_number" and got[0].status == 404 and got[0].attempts == []
    assert "no route pattern" in got[0].detail


@pytest.mark.parametrize("policy,expected", [
    ("ordered", ["b1", "b1", "b1", "b1"]),
    ("round_robin", ["b1", "b2", "b3", "b1"]),
])
async def test_distribution_policies_in_a_run(tmp_path, certs_base, port_offset, policy, expected):
    got = await run(tmp_path, certs_base, port_offset, calls(("1000", "2000"), repeat=4),
                    trunk_extra=f'distribution = "{policy}"\n  {DESTS}')
    assert [c.destination_node for c in got] == expected
    assert all(policy in c.distribution for c in got)


async def test_random_distribution_is_reproducible_for_a_seed(tmp_path, certs_base, port_offset):
    extra = f'distribution = "random"\n  {DESTS}'
    first = await run(tmp_path, certs_base, port_offset, calls(("1000", "2000"), repeat=6), trunk_extra=extra, seed=5)
    again = await run(tmp_path, certs_base, port_offset + 7, calls(("1000", "2000"), repeat=6), trunk_extra=extra, seed=5)
    assert [c.destination_node for c in first] == [c.destination_node for c in again]
    assert len({c.destination_node for c in first}) > 1


async def test_origin_node_rules(tmp_path, certs_base, port_offset):
    # 1001 is registered to a2, which is not in the trunk's group ["a1"]: a node of the group sends
    got = await run(tmp_path, certs_base, port_offset, calls(("1000", "2000"), ("1001", "2000")))
    assert [c.origin_node for c in got] == ["a1", "a1"]
    assert "not in the trunk's CallManager group" in got[1].origin_rule
    got = await run(tmp_path, certs_base, port_offset + 3, calls(("1000", "2000"), ("1001", "2000")),
                    trunk_extra=f"run_on_all_active_nodes = true\n  {DESTS}")
    assert [c.origin_node for c in got] == ["a1", "a2"]
    assert "run on all active nodes" in got[1].origin_rule


async def test_srv_destinations_follow_priority_and_fail_over(tmp_path, certs_base, port_offset):
    srv = ('[[srv]]\nname = "_sips._tcp.b.lab"\ntarget = "b1.b.lab"\npriority = 1\n'
           '[[srv]]\nname = "_sips._tcp.b.lab"\ntarget = "b2.b.lab"\npriority = 2\n')
    got = await run(tmp_path, certs_base, port_offset, calls(("1000", "2000"), repeat=3),
                    trunk_extra='srv = "_sips._tcp.b.lab"\n  failover = true', extra=srv,
                    b1_extra="fault = { refuse_connections = true }")
    for c in got:
        assert c.outcome == "answered" and c.destination_node == "b2"
        assert [a.destination_node for a in c.attempts] == ["b1", "b2"]
        assert c.attempts[0].reason == "connect_refused" and "refuse_connections" in c.attempts[0].injected


async def test_every_nth_rejection_with_and_without_failover_on_503(tmp_path, certs_base, port_offset):
    fault = "fault = { reject_every_nth = 2 }"
    got = await run(tmp_path, certs_base, port_offset, calls(("1000", "2000"), repeat=4),
                    trunk_extra='destinations = ["b1.b.lab:5061", "b2.b.lab:5061"]\n  distribution = "ordered"',
                    b1_extra=fault)
    assert [(c.status, c.reason) for c in got] == [(200, None), (503, "service_unavailable")] * 2
    got = await run(tmp_path, certs_base, port_offset + 5, calls(("1000", "2000"), repeat=4),
                    trunk_extra='destinations = ["b1.b.lab:5061", "b2.b.lab:5061"]\n  distribution = "ordered"\n'
                                '  failover = true\n  failover_on = ["503"]', b1_extra=fault)
    assert all(c.outcome == "answered" for c in got)
    assert [len(c.attempts) for c in got] == [1, 2, 1, 2]
    assert got[1].attempts[0].injected == "b1: reject_every_nth=2"


async def test_stall_and_close_after_handshake_faults_are_reported_and_tagged(tmp_path, certs_base, port_offset):
    # b1 accepts TCP and never answers the ClientHello; a1 gives up after its handshake_timeout (0.5 s here)
    got = await run(tmp_path, certs_base, port_offset, calls(("1000", "2000")),
                    trunk_extra='destinations = ["b1.b.lab:5061"]', b1_extra="fault = { stall = true }",
                    hs_timeout=0.5)
    (call,) = got
    assert call.reason == "timeout" and call.setup_ms >= 500
    assert call.attempts[0].injected == "b1: stall"
    got = await run(tmp_path, certs_base, port_offset + 9, calls(("1000", "2000")),
                    trunk_extra='destinations = ["b1.b.lab:5061"]', b1_extra="fault = { close_after_handshake = true }")
    (call,) = got
    assert call.outcome == "failed" and call.reason == "connection_lost"
    assert call.attempts[0].injected == "b1: close_after_handshake"
