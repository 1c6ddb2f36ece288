"""The seed-000 lab end to end: real TLS over loopback between trio nodes, real SIP."""

from pathlib import Path

from sipsim.lab.loader import load_scenario
from sipsim.runtime.runner import LabRunner
from tests.conftest import SCENARIOS

SEED = SCENARIOS / "seed-000-self-signed.toml"


async def run_lab(path, base, offset):
    scenario = load_scenario(path)
    return await LabRunner(scenario, port_offset=offset, base=base).run()


async def test_seed_lab_calls_leave_from_the_calling_phones_node_and_alternate(certs_base, port_offset):
    result = await run_lab(SEED, certs_base, port_offset)
    calls = result.calls
    assert len(calls) == 6 and all(c.outcome == "answered" for c in calls), [(c.id, c.reason, c.detail) for c in calls]
    by_id = {c.id: c for c in calls}
    # 7131001 is on the publisher, 7131002 on the subscriber: each leaves from its own node
    assert by_id[1].origin_node == "CUCM7-PUB" and by_id[2].origin_node == "CUCM7-SUB1"
    assert {by_id[1].destination_node, by_id[2].destination_node} == {"CUCM8-Publisher"}
    assert by_id[1].pattern == "851XXXX" and by_id[3].pattern == "713XXXX"
    # calls from cluster 2 alternate between the trunk's two destinations
    dests = [by_id[i].destination_node for i in (3, 4, 5, 6)]
    assert dests == ["CUCM7-SUB1", "CUCM7-PUB", "CUCM7-SUB1", "CUCM7-PUB"]
    for c in calls:
        assert c.status == 200 and c.tls_version and c.cipher and c.setup_ms is not None
    assert "CN=CUCM8-Publisher.bbbburns.lab" in by_id[1].peer_subject
    assert "CN=CUCM7-SUB1.bbbburns.lab" in by_id[3].peer_subject


async def test_profile_listing_only_the_publisher_fails_every_call_through_the_subscriber(
        tmp_path, certs_base, port_offset):
    text = SEED.read_text().replace(
        'x509_subject_name = "CUCM7-PUB.bbbburns.lab, CUCM7-SUB1.bbbburns.lab"',
        'x509_subject_name = "CUCM7-PUB.bbbburns.lab"')
    text = text.replace('name = "seed-000"', 'name = "seed-000"\ncerts_dir = "certs/seed-000"')
    variant = tmp_path / "variant.toml"
    variant.write_text(text)
    result = await run_lab(variant, certs_base, port_offset)
    by_id = {c.id: c for c in result.calls}
    through_sub1 = {2, 3, 5}  # 7131002 leaves from SUB1; calls 3 and 5 go to SUB1
    for i, c in by_id.items():
        if i in through_sub1:
            assert c.outcome == "failed" and c.reason == "subject_not_allowed", (i, c.reason, c.detail)
            assert "CUCM7-SUB1.bbbburns.lab" in c.detail and "CUCM7-PUB.bbbburns.lab" in c.detail
        else:
            assert c.outcome == "answered", (i, c.reason, c.detail)


async def test_tls13_rejection_by_the_server_is_explained_as_learned_on_first_read(tmp_path, certs_base, port_offset):
    text = SEED.read_text().replace(
        'x509_subject_name = "CUCM7-PUB.bbbburns.lab, CUCM7-SUB1.bbbburns.lab"',
        'x509_subject_name = "CUCM7-PUB.bbbburns.lab"')
    variant = tmp_path / "variant.toml"
    variant.write_text(text.replace('name = "seed-000"', 'name = "seed-000"\ncerts_dir = "certs/seed-000"'))
    result = await run_lab(variant, certs_base, port_offset)
    call = {c.id: c for c in result.calls}[2]  # 7131002 leaves from CUCM7-SUB1, which CUCM8 refuses
    assert call.tls_version == "TLSv1.3" and call.status is None
    assert call.reason == "subject_not_allowed"
    assert "first read" in call.detail and "CUCM7-SUB1.bbbburns.lab" in call.detail
