"""How a trunk picks a destination for each call. CUCM does not document it; seed 000's capture shows
consecutive calls alternating between two destinations, so the default is round-robin."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from sipsim.lab import model as m


class Distributor:
    """Orders a trunk's destinations for one call: the first is tried first, the rest are the
    failover order. Deterministic for a given seed."""

    def __init__(self, trunk: m.Trunk, seed: int):
        self.trunk = trunk
        self.policy = trunk.distribution
        self._next = 0
        self._rng = random.Random(f"{seed}:{trunk.cluster}:{trunk.name}")

    def order(self, destinations: Sequence[m.Destination], call_key: str = "") -> tuple[list[m.Destination], str]:
        dests = list(destinations)
        if not dests:
            return [], "no destination in service"
        if self.trunk.srv:
            return self._srv_order(dests)
        n = len(dests)
        if self.policy == "ordered":
            return dests, "ordered: top-down by sort order"
        if self.policy == "random":
            start = self._rng.randrange(n)
            why = f"random: drew {dests[start].label}"
        elif self.policy == "weighted":
            pick = self._rng.choices(range(n), weights=[d.weight for d in dests])[0]
            start = pick
            why = f"weighted: drew {dests[pick].label} (weight {dests[pick].weight} of {sum(d.weight for d in dests)})"
        elif self.policy == "call_id_hash":
            start = int.from_bytes(hashlib.sha256(call_key.encode()).digest()[:4], "big") % n
            why = f"call_id_hash: {call_key} → {dests[start].label}"
        else:
            start = self._next % n
            self._next += 1
            why = f"round_robin: turn {self._next} → {dests[start].label}"
        return dests[start:] + dests[:start], why

    def _srv_order(self, dests: list[m.Destination]) -> tuple[list[m.Destination], str]:
        """RFC 2782: lowest priority first; within a priority, a weighted random order."""
        order: list[m.Destination] = []
        for priority in sorted({d.sort_order for d in dests}):
            group = [d for d in dests if d.sort_order == priority]
            while group:
                total = sum(d.weight for d in group)
                if total == 0:
                    pick = group[0]
                else:
                    x = self._rng.uniform(0, total)
                    acc = 0.0
                    pick = group[-1]
                    for d in group:
                        acc += d.weight
                        if x <= acc:
                            pick = d
                            break
                order.append(pick)
                group.remove(pick)
        return order, f"srv {self.trunk.srv}: priority {order[0].sort_order}, weight {order[0].weight} → {order[0].label}"
