"""A scenario's `[expect]` table: outcomes the lab must show. `sipsim run` checks them after the run
and exits 1 with one line per expectation that does not hold.

    [expect]
    answered = 3                 # how many calls are answered
    failed = 1
    failure_ratio = 0.25         # failed / placed (± tolerance, default 0)
    tolerance = 0.0
    [[expect.destination]]       # per destination (as written in the trunk, or by node name)
    node = "CUCM7-SUB1"          # or destination = "cucm7-sub1.bbbburns.lab:5061"
    failure_ratio = 1.0          # of the attempts at that destination
    reason = "subject_not_allowed"
    [[expect.call]]              # per call (all calls matching id / caller / called)
    caller = "7131001"
    origin_node = "CUCM7-PUB"
    outcome = "answered"
    [expect.trunk_status]        # "node/trunk" = CUCM's status words
    "CUCM8-Publisher/SIP-TLS-to-Cluster1" = "Partial Service"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sipsim.errors import UserError
from sipsim.report.records import RunResult

_TOP = {"answered", "failed", "failure_ratio", "tolerance", "destination", "call", "trunk_status"}
_DEST = {"node", "destination", "failure_ratio", "reason", "attempts", "answered"}
_CALL_MATCH = {"id", "caller", "called"}
_CALL_CHECK = {"origin_node", "destination_node", "outcome", "reason", "status", "trunk", "pattern", "attempts"}


def validate(expect: dict[str, Any], path: Path) -> None:
    def bad(where: str, key: str, allowed: set[str]) -> UserError:
        return UserError(f"{path}: [{where}] field '{key}' is not an expectation; use one of: {', '.join(sorted(allowed))}")

    for key in expect:
        if key not in _TOP:
            raise bad("expect", key, _TOP)
    for d in expect.get("destination", []):
        for key in d:
            if key not in _DEST:
                raise bad("[expect.destination]]", key, _DEST)
        if not ("node" in d or "destination" in d):
            raise UserError(f"{path}: [[expect.destination]] needs node = \"…\" or destination = \"host:port\"")
    for c in expect.get("call", []):
        for key in c:
            if key not in _CALL_MATCH | _CALL_CHECK:
                raise bad("[expect.call]]", key, _CALL_MATCH | _CALL_CHECK)


def check(expect: dict[str, Any], result: RunResult, trunk_status: dict[str, str] | None = None) -> list[str]:
    """One line per expectation that does not hold (empty: the lab behaved as written)."""
    problems: list[str] = []
    calls = result.calls
    tol = float(expect.get("tolerance", 0.0))
    if "answered" in expect and result.answered != expect["answered"]:
        problems.append(f"expected {expect['answered']} answered calls, got {result.answered}")
    if "failed" in expect and result.failed != expect["failed"]:
        problems.append(f"expected {expect['failed']} failed calls, got {result.failed}")
    if "failure_ratio" in expect and calls:
        ratio = result.failed / len(calls)
        if abs(ratio - expect["failure_ratio"]) > tol + 1e-9:
            problems.append(f"expected a failure ratio of {expect['failure_ratio']:.2f}, got {ratio:.2f} "
                            f"({result.failed} of {len(calls)})")
    for d in expect.get("destination", []):
        label = d.get("node") or d.get("destination")
        attempts = [a for c in calls for a in c.attempts
                    if (d.get("node") and a.destination_node == d["node"])
                    or (d.get("destination") and a.destination.casefold() == d["destination"].casefold())]
        if not attempts:
            problems.append(f"destination {label}: expected attempts there, got none")
            continue
        failed = [a for a in attempts if a.reason is not None]
        if "attempts" in d and len(attempts) != d["attempts"]:
            problems.append(f"destination {label}: expected {d['attempts']} attempts, got {len(attempts)}")
        if "answered" in d and len(attempts) - len(failed) != d["answered"]:
            problems.append(f"destination {label}: expected {d['answered']} answered, got {len(attempts) - len(failed)}")
        if "failure_ratio" in d:
            ratio = len(failed) / len(attempts)
            if abs(ratio - d["failure_ratio"]) > tol + 1e-9:
                problems.append(f"destination {label}: expected failure ratio {d['failure_ratio']:.2f}, "
                                f"got {ratio:.2f} ({len(failed)} of {len(attempts)})")
        if "reason" in d:
            reasons = sorted({a.reason for a in failed})
            if reasons != [d["reason"]]:
                problems.append(f"destination {label}: expected failures with reason {d['reason']}, got "
                                f"{', '.join(reasons) or 'no failures'}")
    for c in expect.get("call", []):
        match = {k: c[k] for k in _CALL_MATCH if k in c}
        chosen = [x for x in calls if all(str(getattr(x, k)) == str(v) for k, v in match.items())]
        desc = ", ".join(f"{k} {v}" for k, v in match.items()) or "every call"
        if not chosen:
            problems.append(f"call with {desc}: expected such a call, none was placed")
        for k in _CALL_CHECK & c.keys():
            for x in chosen:
                got = len(x.attempts) if k == "attempts" else getattr(x, k)
                if str(got) != str(c[k]):
                    problems.append(f"call #{x.id} ({x.caller} → {x.called}): expected {k} {c[k]}, got {got}")
    for key, want in expect.get("trunk_status", {}).items():
        got = (trunk_status or {}).get(key)
        if got != want:
            problems.append(f"trunk {key}: expected status {want!r}, got {got!r}")
    return problems
