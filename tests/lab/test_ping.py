import pytest

from sipsim.lab.ping import (
    IN_SERVICE, OUT_OF_SERVICE, DestinationMonitor, PingSettings, trunk_status, verdict,
)


@pytest.mark.parametrize("status,reason,expected", [
    (200, None, ("up", None)), (404, None, ("up", None)), (405, None, ("up", None)), (501, None, ("up", None)),
    (408, None, ("down", "Remote=408")), (503, None, ("down", "Remote=503")),
    (None, "timeout", ("down", "Local=1")), (None, "connect_refused", ("down", "Local=2")),
    (None, "tls_unknown_ca", ("down", "Local=2")), (None, "dns_failure", ("down", "Local=3")),
])
def test_cucm_verdicts(status, reason, expected):
    assert verdict(status, reason) == expected


def test_intervals_follow_the_state_and_changes_are_recorded():
    m = DestinationMonitor("127.0.0.2:5061", PingSettings(enabled=True))
    assert m.result(200, None, 0.0) == 60.0 and m.state == IN_SERVICE
    assert m.result(None, "timeout", 60.0) == 120.0 and m.state == OUT_OF_SERVICE
    assert m.result(404, None, 180.0) == 60.0 and m.state == IN_SERVICE
    assert [(c.old, c.new, c.cause) for c in m.history] == [
        ("unknown", "in_service", None), ("in_service", "out_of_service", "Local=1"),
        ("out_of_service", "in_service", None)]


def test_no_answer_budget_from_cucm_retry_defaults():
    assert PingSettings().no_answer_after == pytest.approx(19.5)


def test_trunk_status_words():
    s = PingSettings(enabled=True)
    a, b = DestinationMonitor("a", s), DestinationMonitor("b", s)
    a.result(200, None, 0)
    b.result(503, None, 0)
    assert trunk_status([a, b], True) == "Partial Service"
    assert trunk_status([a], True) == "Full Service"
    assert trunk_status([b], True) == "No Service"
    assert trunk_status([a, b], False) == "Unknown - OPTIONS Ping not enabled"
