"""What a run produces: one record per call placed (every call has exactly one outcome) and one per
connection attempt, in the JSON report's shape."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class Attempt:
    destination: str
    destination_node: str | None
    reason: str | None  # None: this attempt carried the call
    detail: str | None
    ms: float
    injected: str | None = None  # the fault injected at that destination, when it explains the failure
    connection: int | None = None  # index into the report's "connections" (TLS record and transcript)


@dataclass
class CallRecord:
    id: int
    caller: str
    called: str
    pattern: str | None = None
    partition: str | None = None
    trunk: str | None = None
    origin_node: str | None = None
    origin_rule: str | None = None
    destination: str | None = None
    destination_node: str | None = None
    distribution: str | None = None
    outcome: str = "failed"  # "answered" or "failed"
    status: int | None = None
    reason: str | None = None
    detail: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    peer_subject: str | None = None
    peer_san: list[str] = field(default_factory=list)
    setup_ms: float | None = None
    call_id: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    started_at: float | None = None  # run clock (s) when the call was placed
    #: the SIP messages of the call seen at the origin node: {"t_ms", "dir" ("out"/"in"), "line"}
    messages: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # What dataclasses.asdict gives, without its recursive deep copy (a third of a 3,000-call
        # report's write time): the fields are scalars, lists of strings, attempts and message dicts.
        d = {name: getattr(self, name) for name in _CALL_FIELDS}
        d["peer_san"] = list(self.peer_san)
        d["attempts"] = [{name: getattr(a, name) for name in _ATTEMPT_FIELDS} for a in self.attempts]
        d["messages"] = [dict(m) for m in self.messages]
        return d


_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))
_CALL_FIELDS = tuple(f.name for f in fields(CallRecord))


@dataclass
class RunResult:
    scenario: str
    calls: list[CallRecord]
    duration_s: float
    pki_events: list[str] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    trunk_status: dict[str, str] = field(default_factory=dict)  # "node/trunk" -> CUCM's words
    ping_changes: list[dict[str, Any]] = field(default_factory=list)
    expectations: list[str] | None = None  # None: the scenario states none; []: all hold
    lab: dict[str, Any] = field(default_factory=dict)  # the lab as configured: nodes, trust, profiles, trunks
    interrupted: bool = False  # Ctrl-C: calls in progress were hung up, no new call was placed

    @property
    def answered(self) -> int:
        return sum(1 for c in self.calls if c.outcome == "answered")

    @property
    def failed(self) -> int:
        return len(self.calls) - self.answered

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "interrupted": self.interrupted,
            "lab": self.lab,
            "duration_s": round(self.duration_s, 3),
            "summary": {"calls": len(self.calls), "answered": self.answered, "failed": self.failed},
            "calls": [c.to_dict() for c in self.calls],
            "connections": self.connections,
            "trunk_status": self.trunk_status,
            "ping_changes": self.ping_changes,
            "expectations": self.expectations,
            "pki": self.pki_events,
        }
