"""A CA-signed lab with an intermediate CA: every node sends its full chain and trusts only the root."""

from sipsim.lab.loader import load_scenario
from sipsim.runtime.runner import LabRunner
from tests.conftest import SCENARIOS


async def test_intermediate_ca_lab_sends_the_chain_and_calls_succeed(tmp_path, certs_base, port_offset):
    text = (SCENARIOS / "seed-003-ca-signed.toml").read_text()
    text = text.replace('hash = "sha1"\n', 'hash = "sha256"\n  intermediate = true\n', 1)
    text = text.replace('name = "seed-003"', 'name = "seed-003-intermediate"')
    path = tmp_path / "chain.toml"
    path.write_text(text)
    result = await LabRunner(load_scenario(path), port_offset=port_offset, base=certs_base).run()
    assert [c.outcome for c in result.calls] == ["answered", "answered"], [c.detail for c in result.calls]
    for conn in result.connections:
        chain = [c["cn"] for c in conn["peer_chain"]]
        assert chain[0] in ("CUCMA", "CUCM10") and len(chain) >= 2  # leaf + intermediate at least
        assert any("Intermediate" in cn or cn != "CA" for cn in chain[1:])
    lab = result.to_dict()["lab"]
    assert all(len(n["trust_files"]) == 1 for n in lab["nodes"])  # the root only
