"""The X.509 Subject Name field of a SIP Trunk Security Profile.

CUCM: up to 4096 characters; names separated by space, comma, semicolon or colon; every node or SRV
target of the peer must be listed; matched against the certificate's subject CN or any subject
alternative name (dNSName); not case sensitive (seed 000). Wildcards are not documented, so they are
a setting (`wildcards`, off by default): with it on, ``*.example.com`` matches one leftmost label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MAX_LENGTH = 4096
_SEPARATORS = re.compile(r"[\s,;:]+")


class SubjectListError(ValueError):
    """The field is longer than CUCM accepts."""


def parse_subject_list(text: str) -> list[str]:
    """Split the field into names, keeping their order and dropping empty entries and duplicates."""
    if len(text) > MAX_LENGTH:
        raise SubjectListError(
            f"X.509 Subject Name is {len(text)} characters; CUCM accepts at most {MAX_LENGTH}"
        )
    names: list[str] = []
    seen: set[str] = set()
    for name in _SEPARATORS.split(text.strip()):
        folded = name.casefold()
        if name and folded not in seen:
            seen.add(folded)
            names.append(name)
    return names


def _matches(listed: str, presented: str, wildcards: bool) -> bool:
    listed_f, presented_f = listed.casefold(), presented.casefold()
    if listed_f == presented_f:
        return True
    if wildcards and listed_f.startswith("*."):
        head, _, tail = presented_f.partition(".")
        return bool(head) and tail == listed_f[2:]
    return False


def presented_names(cn: str | None, sans: Iterable[str]) -> list[str]:
    """The names a certificate presents, CN first, then each dNSName SAN."""
    names = [cn] if cn else []
    names.extend(s for s in sans if s)
    return names


def matching_name(
    cn: str | None, sans: Sequence[str], allowed: Sequence[str], *, wildcards: bool = False
) -> str | None:
    """The first presented name that the list allows, or None."""
    for name in presented_names(cn, sans):
        if any(_matches(listed, name, wildcards) for listed in allowed):
            return name
    return None


def describe_rejection(
    cn: str | None, sans: Sequence[str], allowed: Sequence[str], profile: str, where: str
) -> str:
    """One sentence: what the peer presented, what it was checked against, and the fix."""
    shown = f"CN={cn}" if cn else "no CN"
    if sans:
        shown += " and SAN " + ", ".join(sans)
    listed = ", ".join(allowed) if allowed else "(empty)"
    return (
        f"{where} presented {shown}, which is not in the X.509 Subject Name of security profile "
        f'"{profile}" ({listed}): add {cn or (sans[0] if sans else "its name")} to that list'
    )
