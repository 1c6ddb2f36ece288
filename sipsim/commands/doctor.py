"""`sipsim doctor SCENARIO`: check a lab before any call, statically (no socket).

Exit 0 with "no problems" (warnings and notes may follow), 1 with one line per problem, 2 when the
scenario cannot be read. See docs/doctor.md for what each check means.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sipsim.lab.doctor import connections, diagnose
from sipsim.lab.loader import load_scenario
from sipsim.pki import issue
from sipsim.runtime.context import prepare_pki


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="check a lab statically before any call: trust, names, ports, TLS",
                       description="For every connection the lab can open (per trunk, node and destination) "
                                   "check trust both ways, the X.509 Subject Name lists, ports, TLS versions, "
                                   "ciphers and key exchange groups, Device Security Mode and SRTP, without opening a socket. "
                                   "Exit 1 with one line per problem.")
    p.add_argument("scenario", type=Path, help="scenario file (TOML), e.g. scenarios/one-in-four.toml")
    p.add_argument("--at", metavar="DATE", help="check certificate validity at this time (UTC), e.g. 2030-01-01 "
                                                "(default: now)")
    p.set_defaults(func=run)


def run(args) -> int:
    scenario = load_scenario(args.scenario)
    at = issue.parse_time(args.at) if args.at else None
    pki = prepare_pki(scenario)
    for line in pki.events:
        if not line.startswith("kept"):
            print(f"pki: {line}", file=sys.stderr)
    findings = diagnose(scenario, pki, at=at)
    problems = [f for f in findings if f.severity == "problem"]
    warnings = [f for f in findings if f.severity == "warning"]
    notes = [f for f in findings if f.severity == "note"]
    when = f" at {at:%Y-%m-%d %H:%M:%S} UTC" if at else ""
    print(f"{scenario.name}: {len(scenario.nodes())} nodes, {connections(scenario)} connections checked{when}")
    for f in findings:
        print(f"{f.severity}: {f}")
    extra = ", ".join(f"{n} {w}{'s' if n != 1 else ''}" for n, w in ((len(warnings), "warning"), (len(notes), "note")) if n)
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}" + (f", {extra}" if extra else ""))
        return 1
    print("no problems" + (f" ({extra})" if extra else ""))
    return 0
