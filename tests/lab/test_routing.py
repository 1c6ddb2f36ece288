import pytest

from sipsim.lab.routing import PatternError, RoutePattern, closest_match


def best(patterns, digits, partitions=None):
    m = closest_match([RoutePattern(p, part) for p, part in patterns], digits, partitions)
    return m and (m.pattern.pattern, m.pattern.partition)


@pytest.mark.parametrize("digits,expected", [
    ("1234", "1234"), ("1215", "121X"), ("1299", "12XX"), ("1999", "1XXX"),
])
def test_closest_match_order_from_the_reference(digits, expected):
    pats = [(p, "") for p in ("1XXX", "12XX", "121X", "1234")]
    assert best(pats, digits) == (expected, "")


def test_bang_beats_a_range_when_it_matches_fewer_strings_of_that_length():
    assert best([("1[3-5]XX", ""), ("15!", "")], "1515") == ("15!", "")


def test_tie_goes_to_the_partition_listed_first_in_the_css():
    pats = [("8XXX", "PT_B"), ("8XXX", "PT_A")]
    assert best(pats, "8000", ["PT_A", "PT_B"]) == ("8XXX", "PT_A")
    assert best(pats, "8000", ["PT_B", "PT_A"]) == ("8XXX", "PT_B")
    assert best(pats, "8000", ["PT_C"]) is None


@pytest.mark.parametrize("pattern,yes,no", [
    ("851XXXX", ["8511001"], ["851100", "85110011", "7131001"]),
    ("9.!", ["91", "9123456"], ["9"]),
    ("[^0-5]X", ["60", "*1", "#9"], ["50", "5"]),
    ("12?3", ["13", "123", "12223"], ["1233"]),
    ("1X+", ["10", "1234"], ["1"]),
    ("\\+1!", ["+14155550100"], ["14155550100"]),
    ("*69", ["*69"], ["69"]),
    ("9!#", ["9123#"], ["9123"]),
])
def test_pattern_syntax(pattern, yes, no):
    p = RoutePattern(pattern)
    assert all(p.matches(d) for d in yes), [d for d in yes if not p.matches(d)]
    assert not any(p.matches(d) for d in no), [d for d in no if p.matches(d)]


@pytest.mark.parametrize("bad", ["", "12[3", "1..2", "#12", "[^1^2]", "?1", "1@", "ab"])
def test_invalid_patterns_are_refused_with_a_reason(bad):
    with pytest.raises(PatternError):
        RoutePattern(bad)


def test_unroutable_number_has_no_match():
    assert best([("851XXXX", "")], "9999") is None
