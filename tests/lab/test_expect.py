from pathlib import Path

import pytest

from sipsim.errors import UserError
from sipsim.lab.expect import check, validate
from sipsim.report.records import Attempt, CallRecord, RunResult


def call(i, dest_node, reason=None, origin="N1", caller="1000"):
    c = CallRecord(id=i, caller=caller, called="2000", origin_node=origin, destination_node=dest_node)
    c.outcome = "answered" if reason is None else "failed"
    c.reason = reason
    c.attempts = [Attempt(f"{dest_node}:5061", dest_node, reason, None, 1.0)]
    return c


RESULT = RunResult("lab", [call(1, "A"), call(2, "B", "subject_not_allowed"), call(3, "A"), call(4, "B", "subject_not_allowed")], 1.0)


def test_expectations_that_hold_give_no_problem():
    expect = {"answered": 2, "failure_ratio": 0.5,
              "destination": [{"node": "B", "failure_ratio": 1.0, "reason": "subject_not_allowed"},
                              {"destination": "a:5061", "failure_ratio": 0.0}],
              "call": [{"caller": "1000", "origin_node": "N1"}]}
    assert check(expect, RESULT) == []


def test_each_broken_expectation_is_one_line():
    expect = {"answered": 4, "destination": [{"node": "B", "reason": "tls_unknown_ca"}, {"node": "Z"}],
              "call": [{"id": 2, "outcome": "answered"}], "trunk_status": {"N1/T": "Full Service"}}
    problems = check(expect, RESULT, {"N1/T": "Partial Service"})
    assert len(problems) == 5
    assert "expected 4 answered calls, got 2" in problems[0]
    assert "tls_unknown_ca" in problems[1] and "subject_not_allowed" in problems[1]
    assert "destination Z" in problems[2]
    assert "call #2" in problems[3] and "outcome" in problems[3]
    assert "Partial Service" in problems[4]


def test_unknown_expectation_field_is_a_user_error():
    with pytest.raises(UserError, match="answerd"):
        validate({"answerd": 1}, Path("x.toml"))
    with pytest.raises(UserError, match="needs node"):
        validate({"destination": [{"failure_ratio": 1}]}, Path("x.toml"))
