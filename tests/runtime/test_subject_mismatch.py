"""What the wire shows when a trusted peer's name is not listed: the profile's subject_mismatch."""

import pytest

from sipsim.lab.loader import load_scenario
from sipsim.runtime.runner import LabRunner
from tests.conftest import SCENARIOS

SEED = SCENARIOS / "seed-000-self-signed.toml"


async def run_variant(tmp_path, certs_base, port_offset, action):
    text = SEED.read_text().replace(
        'x509_subject_name = "CUCM7-PUB.bbbburns.lab, CUCM7-SUB1.bbbburns.lab"',
        f'x509_subject_name = "CUCM7-PUB.bbbburns.lab"\n  subject_mismatch = "{action}"')
    text = text.replace('name = "seed-000"', 'name = "seed-000"\ncerts_dir = "certs/seed-000"')
    # only the subscriber's call to the publisher of cluster 2: CUCM8-Publisher judges CUCM7-SUB1 inbound
    text = text[:text.index("[[call]]")] + '[[call]]\nfrom = "7131002"\nto = "8511001"\n'
    # "drop" answers nothing: the caller gives up after 1 s instead of CUCM's 180 s
    text = text.replace("hold = 0.2", "hold = 0.2\nno_answer_timeout = 1.0\ncall_timeout = 1.0")
    path = tmp_path / f"{action}.toml"
    path.write_text(text)
    result = await LabRunner(load_scenario(path), port_offset=port_offset, base=certs_base).run()
    (call,) = result.calls
    return call


@pytest.mark.parametrize("action,status,words", [
    ("tls_alert", None, "first read"),
    ("close", None, "closed the connection after the handshake"),
    ("drop", None, "ignored our requests"),
    ("sip_403", 403, "the peer answered 403"),
    ("sip_503", 503, "the peer answered 503"),
])
async def test_each_action_fails_the_call_as_subject_not_allowed_with_its_wire_sign(
        tmp_path, certs_base, port_offset, action, status, words):
    call = await run_variant(tmp_path, certs_base, port_offset, action)
    assert call.outcome == "failed" and call.reason == "subject_not_allowed", (call.reason, call.detail)
    assert call.status == status
    assert "CUCM7-SUB1.bbbburns.lab" in call.detail and words in call.detail
