"""`sipsim.lab.doctor`: every planted problem is found, with its text; the seed labs have none."""

import tomllib

import pytest
from OpenSSL import SSL

from sipsim.lab.doctor import Finding, diagnose, memory_handshake
from sipsim.lab.loader import load_scenario
from sipsim.runtime.context import LabContext, prepare_pki
from sipsim.tls import build_context
from tests.conftest import SCENARIOS
from tests.labs import two_clusters


def doctor(path, certs_base, at=None):
    scenario = load_scenario(path)
    return diagnose(scenario, prepare_pki(scenario, base=certs_base), at=at)


def problems(findings):
    return [f for f in findings if f.severity == "problem"]


# --- the project's scenarios --------------------------------------------------------------------

OUTBOUND_B4 = ('CUCM-HQ → cucm-b4 (trunk SIP-TLS-Branch): cucm-b4 presents CN=cucm-b4-old.branch.lab, not in '
               'security profile "To Branch TLS" (cluster HQ): add it to the X.509 Subject Name, or reissue '
               "cucm-b4's certificate as cucm-b4.branch.lab")


@pytest.mark.parametrize("name", ["one-in-four.toml", "one-in-four-failover.toml", "one-in-four-ping.toml"])
def test_one_in_four_names_the_misnamed_node_in_both_directions(name, certs_base):
    found = problems(doctor(SCENARIOS / name, certs_base))
    assert [str(f) for f in found][0] == OUTBOUND_B4
    assert len(found) == 2
    inbound = found[1]
    assert inbound.pair == "cucm-b4 → CUCM-HQ (trunk SIP-TLS-HQ)"
    assert 'not in security profile "To Branch TLS" (cluster HQ) that CUCM-HQ applies on port 5061' in inbound.text
    assert {f.check for f in found} == {"subject"} and {f.reason for f in found} == {"subject_not_allowed"}
    # the other three Branch nodes are fine, in both directions
    assert not any(n in f.pair for f in found for n in ("cucm-b1", "cucm-b2", "cucm-b3"))


def test_one_in_four_refused_is_a_note_about_the_injected_fault_not_a_problem(certs_base):
    found = doctor(SCENARIOS / "one-in-four-refused.toml", certs_base)
    assert problems(found) == []
    (note,) = [f for f in found if f.severity == "note"]
    assert note.pair == "cucm-b4" and note.check == "fault"
    assert "refuse_connections" in note.text and "connect_refused" in note.text
    assert "SIP-TLS-Branch → cucm-b4.branch.lab:5061" in note.text


MISMATCH = {
    "mismatch-tls-version.toml": ("tls_version", [
        "CUCMA → CUCM10 (trunk CUCM10): no TLS version in common (tls_protocol_version): CUCMA allows TLS "
        "1.0–1.0, CUCM10 allows TLS 1.2–1.3: raise CUCMA's max_version to 1.2 or lower CUCM10's min_version to 1.0",
        "CUCM10 → CUCMA (trunk CUCMA): no TLS version in common"]),
    "mismatch-null-cipher.toml": ("cipher", [
        'CUCM-AUTH → CUCM-ENC (trunk SIP-TLS-to-Enc): no cipher in common (tls_no_shared_cipher): CUCM-AUTH\'s '
        'profile "Authenticated SIP Trunk Profile" is Authenticated (NULL-SHA), CUCM-ENC\'s profile "Encrypted '
        "SIP Trunk Profile\" is Encrypted: use the same Device Security Mode on both trunks' profiles",
        "CUCM-ENC → CUCM-AUTH (trunk SIP-TLS-to-Auth): no cipher in common"]),
    "mismatch-missing-ca.toml": ("trust", [
        "CUCM-X → CUCM-Y (trunk SIP-TLS-to-Y): CUCM-Y does not trust CUCM-X's certificate CN=CUCM-X.x.lab, "
        "issued by CN=sipsim Lab Root CA (tls_unknown_ca): upload the root CA CN=sipsim Lab Root CA",
        "CUCM-Y → CUCM-X (trunk SIP-TLS-to-X): CUCM-Y does not trust CUCM-X's certificate"]),
    "mismatch-expired.toml": ("trust", [
        "CUCM-OLD → CUCM-NEW (trunk SIP-TLS-to-New): CUCM-NEW refuses CUCM-OLD's certificate as a TLS client "
        "(tls_cert_expired): CN=CUCM-OLD.old.lab expired on 2024-01-01 00:00:00 GMT",
        "CUCM-NEW → CUCM-OLD (trunk SIP-TLS-to-Old): CUCM-NEW refuses CUCM-OLD's certificate as a TLS server "
        "(tls_cert_expired)"]),
}


@pytest.mark.parametrize("name", sorted(MISMATCH))
def test_each_mismatch_scenario_is_found_with_the_reason_its_expect_table_predicts(name, certs_base):
    check, starts = MISMATCH[name]
    found = problems(doctor(SCENARIOS / name, certs_base))
    assert len(found) == len(starts), [str(f) for f in found]
    for finding, start in zip(found, starts):
        assert str(finding).startswith(start), str(finding)
        assert finding.check == check
    expect = tomllib.loads((SCENARIOS / name).read_text())["expect"]
    assert {f.reason for f in found} == {d["reason"] for d in expect["destination"]}


def test_mismatch_scenarios_use_their_own_loopback_addresses():
    seen = {}
    for path in sorted(SCENARIOS.glob("*.toml")):
        for c in tomllib.loads(path.read_text()).get("cluster", []):
            for n in c.get("node", []):
                seen.setdefault(n["address"], set()).add(path.name)
    mine = {a for a, files in seen.items() if any(f.startswith("mismatch") for f in files)}
    assert mine and all(a.rsplit(".", 1)[0] == "127.0.0" and 81 <= int(a.rsplit(".", 1)[1]) <= 89 for a in mine)
    assert all(len(seen[a]) == 1 for a in mine)


def test_seed_000_has_nothing_to_report(certs_base):
    assert doctor(SCENARIOS / "seed-000-self-signed.toml", certs_base) == []


def test_seed_003_has_only_legacy_warnings(certs_base):
    found = doctor(SCENARIOS / "seed-003-ca-signed.toml", certs_base)
    assert problems(found) == []
    assert found and {f.severity for f in found} == {"warning"} and {f.check for f in found} == {"legacy"}
    texts = "\n".join(str(f) for f in found)
    assert "CUCMA: accepts TLS 1.0" in texts and "CUCM10: accepts TLS 1.0" in texts
    assert "1024-bit RSA key" in texts and "SHA-1" in texts
    assert "CUCMA → CUCM10 (trunk CUCM10): negotiates TLSv1 with AES128-SHA" in texts


# --- variants written here ----------------------------------------------------------------------

variant = two_clusters  # tests/labs.py: the tests below vary one field of it


def test_the_base_variant_is_clean(tmp_path, certs_base):
    assert doctor(variant(tmp_path, "doc-clean"), certs_base) == []


def test_port_mismatch(tmp_path, certs_base):
    found = problems(doctor(variant(tmp_path, "doc-port", a_dest="CUCM-B.b.lab:5062"), certs_base))
    (f,) = found
    assert f.pair == "CUCM-A → CUCM-B (trunk To-B)" and f.check == "port" and f.reason == "connect_refused"
    assert f.text == ('destination CUCM-B.b.lab:5062: CUCM-B listens on port 5061 (5061 (security profile "To A" '
                      "of trunk To-A)), nothing answers on 5062 (connect_refused): set the destination port to 5061")


def test_default_port_5060_is_a_port_mismatch_against_a_tls_profile(tmp_path, certs_base):
    (f,) = problems(doctor(variant(tmp_path, "doc-port-default", a_dest="CUCM-B.b.lab"), certs_base))
    assert "nothing answers on 5060" in f.text and "set the destination port to 5061" in f.text


def test_missing_trust_self_signed(tmp_path, certs_base):
    path = variant(tmp_path, "doc-trust", b_node='trust_exclude = ["CUCM-A.a.lab"]')
    found = problems(doctor(path, certs_base))
    assert len(found) == 2  # CUCM-B refuses CUCM-A as client (A → B) and as server (B → A)
    assert [f.pair for f in found] == ["CUCM-A → CUCM-B (trunk To-B)", "CUCM-B → CUCM-A (trunk To-A)"]
    for f in found:
        assert f.check == "trust" and f.reason == "tls_unknown_ca"
        assert f.text.startswith("CUCM-B does not trust CUCM-A's certificate CN=CUCM-A.a.lab, self-signed "
                                 "(tls_unknown_ca): upload CUCM-A's certificate (CUCM-A.a.lab.pem) to CUCM-B "
                                 "as CallManager-trust")
        assert "remove \"CUCM-A.a.lab\" from CUCM-B's trust_exclude" in f.text


def test_unlisted_name_outbound_and_a_san_that_fixes_it(tmp_path, certs_base):
    out, back = problems(doctor(variant(tmp_path, "doc-name", a_list="cucm-b.example.net"), certs_base))
    assert out.pair == "CUCM-A → CUCM-B (trunk To-B)" and out.reason == "subject_not_allowed"
    assert out.text == ('CUCM-B presents CN=CUCM-B.b.lab, not in security profile "To B" (cluster A): add it to '
                        "the X.509 Subject Name")
    # the same list is what CUCM-A applies to CUCM-B's calls on port 5061
    assert back.pair == "CUCM-B → CUCM-A (trunk To-A)"
    assert back.text.startswith('CUCM-B presents CN=CUCM-B.b.lab, not in security profile "To B" (cluster A) '
                                "that CUCM-A applies on port 5061")
    # a SAN dNSName counts as a name, as in the runtime
    fixed = variant(tmp_path, "doc-name-san", a_list="cucm-b.example.net",
                    b_node='cert = { sans = ["cucm-b.example.net"] }')
    assert problems(doctor(fixed, certs_base)) == []


def test_unlisted_name_inbound(tmp_path, certs_base):
    path = variant(tmp_path, "doc-name-in", b_profile="", a_node='cert = { cn = "cucm-a-old.a.lab" }')
    found = problems(doctor(path, certs_base))
    assert [f.pair for f in found] == ["CUCM-A → CUCM-B (trunk To-B)", "CUCM-B → CUCM-A (trunk To-A)"]
    assert found[0].text == ('CUCM-A presents CN=cucm-a-old.a.lab, not in security profile "To A" (cluster B) '
                             "that CUCM-B applies on port 5061: add it to the X.509 Subject Name, or reissue "
                             "CUCM-A's certificate as CUCM-A.a.lab")
    assert found[1].text.startswith('CUCM-A presents CN=cucm-a-old.a.lab, not in security profile "To A" (cluster B):')


def test_expired_certificate_and_the_at_option(tmp_path, certs_base):
    path = variant(tmp_path, "doc-expired", b_node='cert = { not_before = "2020-01-01", not_after = "2021-06-30" }')
    found = problems(doctor(path, certs_base))
    assert [f.reason for f in found] == ["tls_cert_expired", "tls_cert_expired"]
    assert found[0].text.startswith("CUCM-A refuses CUCM-B's certificate as a TLS server (tls_cert_expired): "
                                    "CN=CUCM-B.b.lab expired on 2021-06-30 00:00:00 GMT")
    assert found[1].text.startswith("CUCM-A refuses CUCM-B's certificate as a TLS client")
    assert 'not_after = "2021-06-30"' in found[0].text
    # checked at a date when it was valid, CUCM-B's certificate is fine — CUCM-A's, made today, is not yet valid
    then = problems(doctor(path, certs_base, at="2021-01-01"))
    assert then and {f.reason for f in then} == {"tls_cert_not_yet_valid"}
    assert all("refuses CUCM-A's certificate" in f.text and "is not valid before" in f.text for f in then)


def test_version_gap(tmp_path, certs_base):
    path = variant(tmp_path, "doc-version", a_node='tls = { min_version = "1.0", max_version = "1.1" }')
    found = doctor(path, certs_base)
    assert [f.reason for f in problems(found)] == ["tls_protocol_version"] * 2
    assert problems(found)[0].text == ("no TLS version in common (tls_protocol_version): CUCM-A allows TLS 1.0–1.1, "
                                       "CUCM-B allows TLS 1.2–1.3: raise CUCM-A's max_version to 1.2 or lower "
                                       "CUCM-B's min_version to 1.1")
    assert any(f.severity == "warning" and f.pair == "CUCM-A" and "TLS 1.0" in f.text for f in found)


def test_authenticated_mode_caps_tls_at_1_2(tmp_path, certs_base):
    both = 'device_security_mode = "authenticated"'
    path = variant(tmp_path, "doc-auth-13", a_profile=both, b_profile=both,
                   b_node='tls = { min_version = "1.3" }')
    found = problems(doctor(path, certs_base))
    assert found and all(f.check in ("tls_version", "config") for f in found)


def test_both_authenticated_is_fine(tmp_path, certs_base):
    both = 'device_security_mode = "authenticated"'
    assert problems(doctor(variant(tmp_path, "doc-auth", a_profile=both, b_profile=both), certs_base)) == []


def test_mode_differs_but_a_custom_cipher_list_bridges_it_is_a_warning(tmp_path, certs_base):
    path = variant(tmp_path, "doc-mode", a_profile='device_security_mode = "authenticated"',
                   a_node='tls = { ciphers = "NULL-SHA:AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256" }')
    found = doctor(path, certs_base)
    assert problems(found) == []
    assert any(f.check == "mode" and "Device Security Mode differs" in f.text for f in found)


def test_srtp_allowed_over_authenticated_warns(tmp_path, certs_base):
    both = 'device_security_mode = "authenticated"'
    found = doctor(variant(tmp_path, "doc-srtp", a_profile=both, b_profile=both, a_trunk="srtp_allowed = true"),
                   certs_base)
    (w,) = [f for f in found if f.check == "srtp"]
    assert w.severity == "warning" and w.pair == "trunk To-B (cluster A)"
    assert "keys would travel in clear SDP" in w.text


def test_unresolvable_destination(tmp_path, certs_base):
    (f,) = problems(doctor(variant(tmp_path, "doc-dns", a_dest="cucm-b.nowhere.lab:5061"), certs_base))
    assert f.pair == "CUCM-A → cucm-b.nowhere.lab:5061 (trunk To-B)" and f.reason == "dns_failure"


def test_non_secure_against_tls(tmp_path, certs_base):
    path = variant(tmp_path, "doc-tcp", a_profile='device_security_mode = "non_secure"\n  incoming_port = 5060')
    found = problems(doctor(path, certs_base))
    assert any(f.check == "mode" and "Non Secure" in f.text for f in found)


def test_finding_prints_pair_then_text():
    assert str(Finding("problem", "A → B (trunk T)", "broken")) == "A → B (trunk T): broken"


def test_memory_handshake_between_two_real_contexts(certs_base):
    scenario = load_scenario(SCENARIOS / "seed-003-ca-signed.toml")
    lab = LabContext(scenario, prepare_pki(scenario, base=certs_base))
    a, b = scenario.node("CUCMA"), scenario.node("CUCM10")
    client = build_context(lab.tls_config(a, "encrypted"), False)
    server = build_context(lab.tls_config(b, "encrypted"), True)
    assert memory_handshake(client, server) == ("TLSv1", "AES128-SHA", None)
    modern = build_context(lab.tls_config(b, "encrypted"), False)
    modern.set_min_proto_version(SSL.TLS1_2_VERSION)
    version, cipher, error = memory_handshake(modern, build_context(lab.tls_config(a, "encrypted"), True))
    assert version is None and error


def test_srv_targets_are_checked_like_destinations(tmp_path, certs_base):
    path = variant(tmp_path, "doc-srv")
    text = path.read_text().replace('destinations = ["CUCM-B.b.lab:5061"]', 'srv = "_sips._tcp.b.lab"')
    text += ('\n[[srv]]\nname = "_sips._tcp.b.lab"\ntarget = "CUCM-B.b.lab"\nport = 5061\npriority = 1\n'
             '\n[[srv]]\nname = "_sips._tcp.b.lab"\ntarget = "CUCM-B.b.lab"\nport = 5062\npriority = 2\n')
    path.write_text(text)
    (f,) = problems(doctor(path, certs_base))
    assert f.pair == "CUCM-A → CUCM-B (trunk To-B)" and f.check == "port" and "CUCM-B.b.lab:5062" in f.text


# --- key exchange groups -------------------------------------------------------------------------

def test_no_key_exchange_group_in_common_is_a_problem_naming_groups(tmp_path, certs_base):
    path = variant(tmp_path, "doc-groups", a_node='tls = { groups = "P-384" }', b_node='tls = { groups = "P-256" }')
    found = problems(doctor(path, certs_base))
    assert [f.pair for f in found] == ["CUCM-A → CUCM-B (trunk To-B)", "CUCM-B → CUCM-A (trunk To-A)"]
    assert {f.reason for f in found} == {"tls_no_shared_group"} and {f.check for f in found} == {"groups"}
    assert found[0].text == ("no key exchange group in common (tls_no_shared_group): CUCM-A offers groups P-384, "
                             "CUCM-B accepts P-256: give both nodes a group in common ([cluster.node.tls] groups; "
                             "the default X25519:P-256:P-384:P-521 is what CUCM-era peers offer)")
    assert found[1].text.startswith("no key exchange group in common (tls_no_shared_group): CUCM-B offers groups "
                                    "P-256, CUCM-A accepts P-384")


def test_one_node_on_the_default_groups_shares_p256_with_a_p256_only_node(tmp_path, certs_base):
    assert doctor(variant(tmp_path, "doc-groups-p256", b_node='tls = { groups = "P-256" }'), certs_base) == []


def test_ml_kem_on_both_nodes_is_fine(tmp_path, certs_base):
    both = 'tls = { groups = "X25519MLKEM768" }'
    assert doctor(variant(tmp_path, "doc-groups-mlkem", a_node=both, b_node=both), certs_base) == []


def test_tls12_without_a_common_group_works_only_without_ecdhe_a_warning(tmp_path, certs_base):
    path = variant(tmp_path, "doc-groups-12", a_node='tls = { groups = "P-384", max_version = "1.2" }',
                   b_node='tls = { groups = "P-256" }')
    found = doctor(path, certs_base)
    assert problems(found) == []
    warned = [f for f in found if f.check == "groups"]
    assert [f.severity for f in warned] == ["warning", "warning"]
    assert warned[0].text == ("negotiates TLSv1.2 with AES128-SHA because CUCM-A offers groups P-384, CUCM-B accepts "
                              "P-256: no ECDHE suite can be agreed; give them a group in common ([cluster.node.tls] "
                              "groups)")
    # with only ECDHE suites the same gap is a cipher problem that names the groups
    strongest = 'tls = { groups = "P-384", max_version = "1.2", ciphers = "strongest" }'
    found = problems(doctor(variant(tmp_path, "doc-groups-12s", a_node=strongest, b_node='tls = { groups = "P-256" }'),
                            certs_base))
    assert found and {f.reason for f in found} == {"tls_no_shared_cipher"}
    assert "(and CUCM-A offers groups P-384, CUCM-B accepts P-256: no ECDHE suite without a common group)" in found[0].text
