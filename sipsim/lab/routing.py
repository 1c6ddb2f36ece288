"""Route patterns with CUCM's syntax and closest-match digit analysis.

Syntax: ``X`` one digit 0-9; ``[1-5]`` / ``[^1-5]`` a set (``*`` and ``#`` may be members);
``!`` one or more digits; ``?`` zero or more of the previous element; ``+`` one or more of it;
``.`` marks the end of the digits to discard (no effect on matching); ``*`` and literal digits match
themselves; ``#`` ends dialling (last); ``\\+`` a literal plus. ``@`` is not supported.

Closest match: among matching patterns, the one that matches the fewest strings wins. We compare the
number of strings each pattern matches *of the dialled length* (which orders ``1234`` > ``121X`` >
``12XX`` > ``1XXX`` and makes ``15!`` beat ``1[3-5]XX`` for 1515, as CUCM does); ties go to the
partition listed first in the calling search space, then to the order of definition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

DIGITS = frozenset("0123456789")
DIALABLE = DIGITS | {"*", "#", "+"}


class PatternError(ValueError):
    pass


@dataclass(frozen=True)
class _Element:
    chars: frozenset[str]
    repeat: str = ""  # "", "?" (0+), "+" (1+)


def _parse(pattern: str) -> list[_Element]:
    elements: list[_Element] = []
    i = 0
    dots = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "X":
            elements.append(_Element(DIGITS))
        elif c == "!":
            elements.append(_Element(DIGITS, "+"))
        elif c in "?+":
            if not elements or elements[-1].repeat:
                raise PatternError(f"'{c}' must follow a digit, X or a [set] in {pattern!r}")
            last = elements.pop()
            elements.append(_Element(last.chars, c))
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                raise PatternError(f"unclosed '[' in {pattern!r}")
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            if negate:
                body = body[1:]
            if "^" in body:
                raise PatternError(f"'^' must come first inside [ ] in {pattern!r}")
            members: set[str] = set()
            j = 0
            while j < len(body):
                if j + 2 < len(body) and body[j + 1] == "-":
                    lo, hi = body[j], body[j + 2]
                    if lo not in DIGITS or hi not in DIGITS or lo > hi:
                        raise PatternError(f"bad range {body[j:j+3]!r} in {pattern!r}")
                    members.update(str(d) for d in range(int(lo), int(hi) + 1))
                    j += 3
                else:
                    if body[j] not in DIGITS | {"*", "#"}:
                        raise PatternError(f"{body[j]!r} cannot be in [ ] in {pattern!r}")
                    members.add(body[j])
                    j += 1
            if not members:
                raise PatternError(f"empty [ ] in {pattern!r}")
            chars = (DIGITS | {"*", "#"}) - members if negate else frozenset(members)
            elements.append(_Element(frozenset(chars)))
            i = end
        elif c == "\\":
            if pattern[i + 1 : i + 2] != "+":
                raise PatternError(f"only '\\+' may be escaped in {pattern!r}")
            elements.append(_Element(frozenset("+")))
            i += 1
        elif c == ".":
            dots += 1
            if dots > 1:
                raise PatternError(f"only one '.' is allowed in {pattern!r}")
        elif c in DIGITS or c in "*#":
            if c == "#" and i != len(pattern) - 1:
                raise PatternError(f"'#' must be last in {pattern!r}")
            elements.append(_Element(frozenset(c)))
        elif c == "@":
            raise PatternError(f"'@' (national numbering plan) is not supported in {pattern!r}")
        else:
            raise PatternError(f"{c!r} is not route pattern syntax in {pattern!r}")
        i += 1
    if not elements:
        raise PatternError("empty route pattern")
    return elements


def _regex(elements: list[_Element]) -> re.Pattern[str]:
    parts = []
    for el in elements:
        cls = "[" + "".join(re.escape(c) for c in sorted(el.chars)) + "]"
        parts.append(cls + {"": "", "?": "*", "+": "+"}[el.repeat])
    return re.compile("".join(parts))


@dataclass(frozen=True)
class RoutePattern:
    pattern: str
    partition: str = ""
    target: str = ""  # the trunk (or route list) the pattern points to
    _elements: tuple[_Element, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_elements", tuple(_parse(self.pattern)))

    @cached_property
    def _compiled(self) -> re.Pattern[str]:
        return _regex(list(self._elements))

    def matches(self, digits: str) -> bool:
        return self._compiled.fullmatch(digits) is not None

    def count_of_length(self, length: int) -> int:
        """How many dialable strings of exactly ``length`` characters this pattern matches."""
        # dynamic programming over elements: ways[k] = number of strings of length k matched so far
        ways = [1] + [0] * length
        for el in self._elements:
            n = len(el.chars)
            new = [0] * (length + 1)
            for k, w in enumerate(ways):
                if not w:
                    continue
                if el.repeat == "":
                    if k + 1 <= length:
                        new[k + 1] += w * n
                else:
                    start = 0 if el.repeat == "?" else 1
                    mult = n**start
                    for m in range(start, length - k + 1):
                        new[k + m] += w * mult
                        mult *= n
            ways = new
        return ways[length]


@dataclass(frozen=True)
class Match:
    pattern: RoutePattern
    candidates: int  # how many strings of the dialled length it matches


def closest_match(
    patterns: list[RoutePattern], digits: str, partitions: list[str] | None = None
) -> Match | None:
    """CUCM's closest match among ``patterns`` for ``digits``; None when nothing matches.

    ``partitions`` is the calling search space (ordered); patterns in partitions outside it are
    not reachable. ``None`` means every partition is reachable, in order of first appearance.
    """
    order = partitions if partitions is not None else list(dict.fromkeys(p.partition for p in patterns))
    best: tuple[int, int, int] | None = None
    chosen: Match | None = None
    for index, pat in enumerate(patterns):
        if pat.partition not in order or not pat.matches(digits):
            continue
        count = pat.count_of_length(len(digits))
        key = (count, order.index(pat.partition), index)
        if best is None or key < best:
            best, chosen = key, Match(pat, count)
    return chosen
