from sipsim.lab.distribution import Distributor
from sipsim.lab.model import Destination, Trunk

DESTS = tuple(Destination(f"127.0.0.{i}", 5061, i) for i in range(1, 5))


def trunk(policy):
    return Trunk("T", "C", "P", ("N",), DESTS, distribution=policy)


def firsts(policy, n=8, seed=1, keys=None):
    d = Distributor(trunk(policy), seed)
    return [d.order(DESTS, keys[i] if keys else str(i))[0][0].host for i in range(n)]


def test_round_robin_visits_each_destination_in_turn():
    assert firsts("round_robin") == [f"127.0.0.{i}" for i in (1, 2, 3, 4, 1, 2, 3, 4)]


def test_ordered_always_starts_at_the_top():
    assert set(firsts("ordered")) == {"127.0.0.1"}


def test_random_is_reproducible_for_a_seed_and_differs_across_seeds():
    a, b = firsts("random", 20, seed=7), firsts("random", 20, seed=7)
    assert a == b and len(set(a)) > 1
    assert firsts("random", 20, seed=8) != a


def test_call_id_hash_is_stable_per_key():
    keys = ["abc", "abc", "xyz", "abc"]
    got = firsts("call_id_hash", 4, keys=keys)
    assert got[0] == got[1] == got[3]


def test_the_order_lists_every_destination_for_failover():
    order, why = Distributor(trunk("round_robin"), 1).order(DESTS)
    assert [d.host for d in order] == [d.host for d in DESTS] and "round_robin" in why


def test_weighted_follows_the_weights_reproducibly():
    dests = (Destination("127.0.0.1", 5061, 1, weight=3), Destination("127.0.0.2", 5061, 2, weight=1))
    t = Trunk("T", "C", "P", ("N",), dests, distribution="weighted")
    d = Distributor(t, 3)
    picks = [d.order(dests)[0][0].host for _ in range(400)]
    share = picks.count("127.0.0.1") / len(picks)
    assert 0.65 < share < 0.85  # 3:1
    d2 = Distributor(t, 3)
    assert [d2.order(dests)[0][0].host for _ in range(400)] == picks
