"""Key exchange groups: what a sipsim Client Hello offers, what two sipsim ends negotiate, the setting's
errors, and the failure when two ends have no group in common."""

import struct

import pytest

from sipsim.errors import UserError
from sipsim.tls import TLSConfig, build_context
from sipsim.tls.config import DEFAULT_GROUPS, group_names, shared_groups
from sipsim.tls.context import groups_problem
from OpenSSL._util import lib as _lib

from .helpers import cfg_for, handshake

# IANA TLS Supported Groups codepoints
X25519, SECP256R1, SECP384R1, SECP521R1, X25519MLKEM768 = 29, 23, 24, 25, 0x11EC


def client_hello(side) -> dict[str, list[int]]:
    """The groups of the first Client Hello the client put on the wire (its wire tap):
    {"supported_groups": [...], "key_share": [...], "size": bytes of the handshake message}."""
    data = b"".join(d for direction, d, _ in side.tap if direction == "sent")
    assert data[0] == 22, data[:5]                           # TLS record: handshake
    rec_len = struct.unpack(">H", data[3:5])[0]
    body = data[5:5 + rec_len]
    assert body[0] == 1                                      # Client Hello
    hs_len = int.from_bytes(body[1:4], "big")
    p = 4 + 2 + 32                                           # legacy_version, random
    p += 1 + body[p]                                         # session id
    p += 2 + struct.unpack(">H", body[p:p + 2])[0]           # cipher suites
    p += 1 + body[p]                                         # compression methods
    end = p + 2 + struct.unpack(">H", body[p:p + 2])[0]
    p += 2
    out = {"supported_groups": [], "key_share": [], "size": hs_len + 4}
    while p < end:
        etype, elen = struct.unpack(">HH", body[p:p + 4])
        ext = body[p + 4:p + 4 + elen]
        if etype == 10:                                      # supported_groups
            n = struct.unpack(">H", ext[:2])[0]
            out["supported_groups"] = [struct.unpack(">H", ext[2 + i:4 + i])[0] for i in range(0, n, 2)]
        elif etype == 51:                                    # key_share (client_shares)
            q = 2
            while q < len(ext):
                group, klen = struct.unpack(">HH", ext[q:q + 4])
                out["key_share"].append(group)
                q += 4 + klen
        p += 4 + elen
    return out


def pair_cfgs(lab, client_groups=None, server_groups=None, **kw):
    return (cfg_for(lab.a, trust=[lab.b.trust], groups=client_groups, **kw),
            cfg_for(lab.b, trust=[lab.a.trust], groups=server_groups, **kw))


# ------------------------------------------------------------------------------ negotiated groups
async def test_default_is_x25519_under_tls13_and_the_client_hello_has_no_ml_kem(lab):
    p = await handshake(*pair_cfgs(lab))
    assert p.client.error is None and p.server.error is None
    assert p.client.record.version == p.server.record.version == "TLSv1.3"
    assert p.client.record.group == p.server.record.group == "x25519"
    hello = client_hello(p.client)
    assert hello["supported_groups"] == [X25519, SECP256R1, SECP384R1, SECP521R1]
    assert hello["key_share"] == [X25519]                    # one classical key share
    assert X25519MLKEM768 not in hello["supported_groups"] + hello["key_share"]
    assert hello["size"] < 600                               # an ML-KEM-768 key share alone is 1,216 bytes
    assert p.client.record.to_dict()["group"] == "x25519"


@pytest.mark.parametrize("side", ["client", "server"])
async def test_p256_on_one_side_negotiates_secp256r1(lab, side):
    groups = {"client_groups" if side == "client" else "server_groups": "P-256"}
    p = await handshake(*pair_cfgs(lab, **groups))
    assert p.client.error is None and p.server.error is None
    assert p.client.record.group == p.server.record.group == "secp256r1"


async def test_tls12_ecdhe_uses_the_group_too(lab):
    p = await handshake(*pair_cfgs(lab, server_groups="P-384", max_version="1.2"))
    assert p.client.record.version == "TLSv1.2" and p.client.record.cipher.startswith("ECDHE-")
    assert p.client.record.group == p.server.record.group == "secp384r1"


async def test_ml_kem_is_opt_in_and_negotiated_between_two_sipsim_ends(lab):
    p = await handshake(*pair_cfgs(lab, "X25519MLKEM768:X25519", "X25519MLKEM768:X25519"))
    assert p.client.error is None and p.server.error is None
    assert p.client.record.group == p.server.record.group == "X25519MLKEM768"
    hello = client_hello(p.client)
    assert hello["supported_groups"] == [X25519MLKEM768, X25519] and hello["key_share"] == [X25519MLKEM768]
    assert hello["size"] > 1300


async def test_ml_kem_offered_to_a_default_peer_falls_back_to_x25519(lab):
    p = await handshake(*pair_cfgs(lab, client_groups="X25519MLKEM768:X25519"))
    assert p.client.record.group == "x25519"
    assert [f.messages[0] for f in p.client.record.transcript][:2] == ["Client Hello", "Hello Retry Request"]


# ------------------------------------------------------------------------------ no group in common
async def test_no_group_in_common_under_tls13_fails_with_tls_no_shared_group(lab):
    p = await handshake(*pair_cfgs(lab, "P-384", "P-256"), server_kw=dict(local_name="CUCM-B"),
                        client_kw=dict(local_name="CUCM-A", peer_name="CUCM-B"))
    assert p.server.reason == "tls_no_shared_group"
    assert p.server.record.reason == "tls_no_shared_group" and p.server.record.alert_sent == "handshake_failure"
    assert p.server.error.detail.startswith("CUCM-B and 127.0.0.1:40000 have no key exchange group in common: "
                                            "CUCM-B accepts none of the groups 127.0.0.1:40000 offered "
                                            "(OpenSSL: no suitable key share")
    assert f"default {DEFAULT_GROUPS}" in p.server.error.detail
    # the client only sees handshake_failure before any Server Hello (as for a cipher mismatch): its
    # reason stays tls_no_shared_cipher, and its sentence names the group cause too
    assert p.client.reason == "tls_no_shared_cipher" and p.client.record.alert_received == "handshake_failure"
    assert "no key exchange group in common" in p.client.error.detail
    assert "groups" in p.client.error.detail


async def test_no_group_in_common_under_tls12_falls_back_to_a_suite_without_ecdhe(lab):
    p = await handshake(*pair_cfgs(lab, "P-384", "P-256", max_version="1.2"))
    assert p.client.record.cipher == "AES128-SHA" and p.client.record.group is None
    # …and fails when the cipher list has only ECDHE suites
    p = await handshake(*pair_cfgs(lab, "P-384", "P-256", max_version="1.2", ciphers="strongest"))
    assert p.server.reason == "tls_no_shared_cipher"


# ------------------------------------------------------------------------------ the setting
def test_the_default_group_list_has_no_ml_kem(lab):
    assert DEFAULT_GROUPS == "X25519:P-256:P-384:P-521"
    assert TLSConfig(lab.a.cert, lab.a.key).group_list == DEFAULT_GROUPS
    assert TLSConfig(lab.a.cert, lab.a.key, groups=" P-256 ").groups == "P-256"


@pytest.mark.parametrize("value", ["", "   ", 25519])
def test_an_empty_or_non_text_group_list_is_a_user_error(lab, value):
    with pytest.raises(UserError, match="TLS groups .* is not a group list") as info:
        TLSConfig(lab.a.cert, lab.a.key, groups=value)
    assert "\n" not in str(info.value) and "X25519MLKEM768" in str(info.value)


def test_an_unknown_group_is_one_line_naming_it_and_valid_names(lab):
    with pytest.raises(UserError) as info:
        build_context(TLSConfig(lab.a.cert, lab.a.key, groups="X25519:bogus"), server_side=True)
    msg = str(info.value)
    assert msg == ("TLS groups 'X25519:bogus' cannot be used: 'bogus' is not a key exchange group OpenSSL knows; "
                   "use names separated by ':' such as X25519, P-256, P-384, P-521, X448, ffdhe2048, X25519MLKEM768")
    assert _lib.ERR_peek_error() == 0  # OpenSSL's error queue was cleared


def test_groups_problem_names_each_unknown_name_and_accepts_openssl_spellings():
    assert groups_problem("X25519:P-256:P-384:P-521") is None
    assert groups_problem("x25519:secp256r1:prime256v1:X448:ffdhe2048:X25519MLKEM768") is None
    assert groups_problem("foo:P-256:bar").startswith("'foo', 'bar' are not key exchange groups OpenSSL knows")
    assert groups_problem("X25519 P-256").startswith("'X25519 P-256' is not a key exchange group")
    assert groups_problem("X25519::P-256").startswith("OpenSSL cannot read it as a group list")


def test_group_names_and_shared_groups():
    assert group_names(None) == ["x25519", "secp256r1", "secp384r1", "secp521r1"]
    assert group_names("P-256:prime256v1:*X25519MLKEM768/X448") == ["secp256r1", "X25519MLKEM768", "x448"]
    assert group_names("DEFAULT:-X448") is None
    assert shared_groups("P-384", "P-256") == []
    assert shared_groups("P-256:X25519", None) == ["secp256r1", "x25519"]
    assert shared_groups("DEFAULT", "P-256") is None
