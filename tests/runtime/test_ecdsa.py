"""A node with CallManager and CallManager-ECDSA presents the identity that fits the negotiated suite."""

import pytest

from sipsim.lab.loader import load_scenario
from sipsim.runtime.runner import LabRunner

LAB = """
[lab]
name = "ecdsa"
[[cluster]]
name = "A"
domain = "a.lab"
  [[cluster.node]]
  name = "a1"
  address = "127.0.0.111"
  tls = {{ max_version = "1.2" }}
  [[cluster.security_profile]]
  name = "to-B"
  x509_subject_name = "{listed}"
  [[cluster.trunk]]
  name = "T"
  security_profile = "to-B"
  destinations = ["b1.b.lab:5061"]
  [[cluster.route_pattern]]
  pattern = "2XXX"
  trunk = "T"
  [[cluster.phone]]
  dn = "1000"
  node = "a1"
[[cluster]]
name = "B"
domain = "b.lab"
  [[cluster.node]]
  name = "b1"
  address = "127.0.0.112"
  cert = {{ ecdsa = true }}
  tls = {{ max_version = "1.2", ciphers = "{preset}" }}
  [[cluster.security_profile]]
  name = "to-A"
  x509_subject_name = "a1.a.lab"
  [[cluster.trunk]]
  name = "back"
  security_profile = "to-A"
  destinations = ["a1.a.lab:5061"]
  [[cluster.phone]]
  dn = "2000"
  node = "b1"
[[call]]
from = "1000"
to = "2000"
"""


async def run(tmp_path, certs_base, port_offset, preset, listed):
    path = tmp_path / f"{preset}.toml"
    path.write_text(LAB.format(preset=preset, listed=listed))
    result = await LabRunner(load_scenario(path), port_offset=port_offset, base=certs_base).run()
    return result.calls[0]


@pytest.mark.parametrize("preset,cn,cipher_part", [
    ("all_ciphers_ecdsa_preferred", "b1-EC.b.lab", "ECDSA"),
    ("all_ciphers_rsa_preferred", "b1.b.lab", "RSA"),
])
async def test_the_identity_follows_the_negotiated_suite(tmp_path, certs_base, port_offset, preset, cn, cipher_part):
    call = await run(tmp_path, certs_base, port_offset, preset, "b1.b.lab b1-EC.b.lab")
    assert call.outcome == "answered", call.detail
    assert call.peer_subject.endswith(f"CN={cn}") and cipher_part in call.cipher


async def test_an_ecdsa_name_missing_from_the_profile_fails_only_when_ecdsa_is_chosen(tmp_path, certs_base, port_offset):
    call = await run(tmp_path, certs_base, port_offset, "all_ciphers_ecdsa_preferred", "b1.b.lab")
    assert call.reason == "subject_not_allowed" and "b1-EC.b.lab" in call.detail
