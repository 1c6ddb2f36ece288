from pathlib import Path

import pytest

from sipsim.errors import UserError
from sipsim.lab.loader import load_scenario
from sipsim.lab.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "seed-000-self-signed.toml"

MINIMAL = """
[[cluster]]
name = "A"
domain = "a.lab"
  [[cluster.node]]
  name = "N1"
  address = "127.0.0.31"
  [[cluster.security_profile]]
  name = "P"
  x509_subject_name = "N2.b.lab"
  [[cluster.trunk]]
  name = "T"
  security_profile = "P"
  destinations = {dests}
  [[cluster.phone]]
  dn = "1000"
  node = "N1"
"""


def write(tmp_path, text):
    p = tmp_path / "lab.toml"
    p.write_text(text)
    return p


def error_of(tmp_path, text):
    with pytest.raises(UserError) as e:
        load_scenario(write(tmp_path, text))
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "lab.toml") in msg
    return msg


def test_seed_lab_loads_with_cucm_defaults():
    s = load_scenario(SEED)
    pub = s.node("CUCM7-PUB")
    assert pub.fqdn == "CUCM7-PUB.bbbburns.lab" and pub.address == "127.0.0.11"
    prof = s.profile("Cluster2", "Secure SIP Trunk Profile TLS")
    assert prof.x509_subject_name == ("CUCM7-PUB.bbbburns.lab", "CUCM7-SUB1.bbbburns.lab")
    assert prof.incoming_port == 5061 and prof.subject_mismatch == "tls_alert"
    t = s.cluster("Cluster2").trunks[0]
    assert t.distribution == "round_robin" and len(t.destinations) == 2
    assert [c.caller for c in s.calls] == ["7131001", "7131002", "8511001"]


def test_seed_trust_follows_the_upload_steps():
    s = load_scenario(SEED)
    topo = Topology(s)
    assert topo.trusted_names(s.node("CUCM7-PUB")) == ["CUCM8-Publisher.bbbburns.lab"]
    assert topo.trusted_names(s.node("CUCM7-SUB1")) == ["CUCM8-Publisher.bbbburns.lab"]
    assert sorted(topo.trusted_names(s.node("CUCM8-Publisher"))) == [
        "CUCM7-PUB.bbbburns.lab", "CUCM7-SUB1.bbbburns.lab"]


def test_seventeen_destinations_is_an_error_naming_the_trunk(tmp_path):
    dests = [f"127.0.0.{i}:5061" for i in range(40, 57)]
    msg = error_of(tmp_path, MINIMAL.format(dests=dests))
    assert 'trunk "T"' in msg and "17" in msg and "at most 16" in msg


def test_sixteen_destinations_are_fine(tmp_path):
    dests = [f"127.0.0.{i}:5061" for i in range(40, 56)]
    s = load_scenario(write(tmp_path, MINIMAL.format(dests=dests)))
    assert len(s.clusters[0].trunks[0].destinations) == 16


def test_non_loopback_address_is_refused(tmp_path):
    msg = error_of(tmp_path, MINIMAL.format(dests='["127.0.0.2:5061"]').replace("127.0.0.31", "10.0.0.5"))
    assert "loopback" in msg and "'address'" in msg and 'node "N1"' in msg


def test_a_typo_in_a_field_suggests_the_right_name(tmp_path):
    msg = error_of(tmp_path, MINIMAL.format(dests='["127.0.0.2:5061"]').replace("security_profile = ", "security_profil = "))
    assert "security_profil" in msg and "did you mean 'security_profile'" in msg


def test_unknown_profile_reference_lists_what_exists(tmp_path):
    msg = error_of(tmp_path, MINIMAL.format(dests='["127.0.0.2:5061"]').replace('security_profile = "P"', 'security_profile = "Q"'))
    assert '"Q"' in msg and "have: P" in msg


def test_bad_route_pattern_and_bad_toml(tmp_path):
    text = MINIMAL.format(dests='["127.0.0.2:5061"]') + '  [[cluster.route_pattern]]\n  pattern = "85[1XXXX"\n  trunk = "T"\n'
    assert "unclosed" in error_of(tmp_path, text)
    assert "not valid TOML" in error_of(tmp_path, "[[cluster]\n")


def test_wrong_type_and_choice(tmp_path):
    base = MINIMAL.format(dests='["127.0.0.2:5061"]')
    msg = error_of(tmp_path, base.replace('name = "P"', 'name = "P"\n  subject_mismatch = "explode"'))
    assert "tls_alert" in msg and "subject_mismatch" in msg
    msg = error_of(tmp_path, base.replace('name = "P"', 'name = "P"\n  incoming_port = "5061"'))
    assert "incoming_port" in msg and "must be int" in msg


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.toml")


# --- [cluster.node.tls] groups ------------------------------------------------------------------
def with_groups(value: str) -> str:
    return MINIMAL.format(dests='["127.0.0.2:5061"]').replace(
        'address = "127.0.0.31"', f'address = "127.0.0.31"\n  tls = {{ groups = {value} }}')


def test_groups_are_read_and_absent_means_the_default(tmp_path):
    assert load_scenario(write(tmp_path, with_groups('"P-256:X25519MLKEM768"'))).node("N1").tls.groups == \
        "P-256:X25519MLKEM768"
    assert load_scenario(write(tmp_path, MINIMAL.format(dests='["127.0.0.2:5061"]'))).node("N1").tls.groups is None


def test_an_unknown_group_is_one_line_naming_the_node_the_value_and_valid_names(tmp_path):
    msg = error_of(tmp_path, with_groups('"X25519:bogus"'))
    assert msg.endswith('lab.toml: cluster "A" node "N1" [tls]: field \'groups\' is \'X25519:bogus\': \'bogus\' is '
                        "not a key exchange group OpenSSL knows; use names separated by ':' such as X25519, P-256, "
                        "P-384, P-521, X448, ffdhe2048, X25519MLKEM768")


@pytest.mark.parametrize("value,needle", [
    ('["X25519", "P-256"]', "field 'groups' must be text, not ['X25519', 'P-256']"),
    ("25519", "field 'groups' must be text, not 25519"),
    ('" "', "field 'groups' is empty: give key exchange groups separated by ':', or leave it out "
            "(default X25519:P-256:P-384:P-521)"),
])
def test_groups_of_the_wrong_type_or_empty_are_one_line(tmp_path, value, needle):
    msg = error_of(tmp_path, with_groups(value))
    assert needle in msg and 'node "N1" [tls]' in msg
