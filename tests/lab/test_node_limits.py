"""`[cluster.node.limits]` in a scenario: defaults, values, one-line errors."""

import pytest

from sipsim.errors import UserError
from sipsim.lab import model as m
from sipsim.lab.loader import load_scenario
from tests.conftest import SCENARIOS

SEED = SCENARIOS / "seed-000-self-signed.toml"


def with_limits(tmp_path, lines: str):
    text = SEED.read_text().replace('  name = "CUCM8-Publisher"\n  address = "127.0.0.21"\n',
                                    f'  name = "CUCM8-Publisher"\n  address = "127.0.0.21"\n\n'
                                    f'    [cluster.node.limits]\n    {lines}\n', 1)
    path = tmp_path / "limits.toml"
    path.write_text(text)
    return path


def test_defaults():
    node = load_scenario(SEED).node("CUCM8-Publisher")
    assert node.limits == m.NodeLimits(1000, 100, 65536, 4 * 1024 * 1024)


def test_values(tmp_path):
    path = with_limits(tmp_path, "max_connections = 50\n    max_handshakes = 5\n    max_message_bytes = 4096\n"
                                 "    max_queued_bytes = 100000")
    assert load_scenario(path).node("CUCM8-Publisher").limits == m.NodeLimits(50, 5, 4096, 100000)


@pytest.mark.parametrize("line, words", [
    ("max_connections = 0", "max_connections' must be at least 1"),
    ("max_message_bytes = 100", "at least 1024"),
    ("max_conections = 5", "did you mean 'max_connections'"),
    ('max_handshakes = "many"', "must be int"),
])
def test_errors_name_the_field(tmp_path, line, words):
    with pytest.raises(UserError) as e:
        load_scenario(with_limits(tmp_path, line))
    assert "[limits]" in str(e.value) and words in str(e.value), str(e.value)


def test_non_secure_profile_defaults_to_tcp_on_5060():
    s = load_scenario(SCENARIOS / "non-secure-tcp.toml")
    p = s.profile("ClusterA", "Non Secure SIP Trunk Profile")
    assert (p.incoming_transport, p.outgoing_transport, p.incoming_port) == ("TCP+UDP", "TCP", 5060)
