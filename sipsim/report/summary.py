"""A load run in numbers: answered, failed by reason, calls per second, setup-time percentiles."""

from __future__ import annotations

from collections import Counter

from sipsim.report.records import RunResult


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def load_summary(result: RunResult) -> dict:
    setups = [c.setup_ms for c in result.calls if c.outcome == "answered" and c.setup_ms is not None]
    reasons = Counter(c.reason for c in result.calls if c.outcome != "answered")
    return {
        "calls": len(result.calls),
        "answered": result.answered,
        "failed": result.failed,
        "failed_by_reason": dict(reasons.most_common()),
        "duration_s": round(result.duration_s, 3),
        "calls_per_s": round(len(result.calls) / result.duration_s, 1) if result.duration_s > 0 else None,
        "setup_ms": {name: (round(v, 2) if v is not None else None)
                     for name, v in (("p50", percentile(setups, 0.5)), ("p90", percentile(setups, 0.9)),
                                     ("p99", percentile(setups, 0.99)),
                                     ("max", max(setups) if setups else None))},
    }


def summary_lines(summary: dict) -> list[str]:
    s = summary
    lines = [f"{s['calls']} calls: {s['answered']} answered, {s['failed']} failed in {s['duration_s']:.2f} s "
             f"({s['calls_per_s']} calls/s)"]
    if s["failed_by_reason"]:
        lines.append("failed: " + ", ".join(f"{r} ×{n}" for r, n in s["failed_by_reason"].items()))
    st = s["setup_ms"]
    if st["p50"] is not None:
        lines.append(f"setup ms: p50 {st['p50']:.1f}  p90 {st['p90']:.1f}  p99 {st['p99']:.1f}  max {st['max']:.1f}")
    return lines
