import pytest

from sipsim.lab.subjects import (
    SubjectListError, describe_rejection, matching_name, parse_subject_list,
)


@pytest.mark.parametrize("text", [
    "CUCM7-PUB.bbbburns.lab, CUCM7-SUB1.bbbburns.lab",
    "CUCM7-PUB.bbbburns.lab CUCM7-SUB1.bbbburns.lab",
    "CUCM7-PUB.bbbburns.lab;CUCM7-SUB1.bbbburns.lab",
    "CUCM7-PUB.bbbburns.lab:CUCM7-SUB1.bbbburns.lab",
    " CUCM7-PUB.bbbburns.lab ,;: CUCM7-SUB1.bbbburns.lab\n",
])
def test_every_separator_splits_the_list(text):
    assert parse_subject_list(text) == ["CUCM7-PUB.bbbburns.lab", "CUCM7-SUB1.bbbburns.lab"]


def test_duplicates_differing_in_case_are_listed_once():
    assert parse_subject_list("CUCM10, cucm10, CUCMA") == ["CUCM10", "CUCMA"]


def test_more_than_4096_characters_is_refused():
    parse_subject_list("a" * 4096)
    with pytest.raises(SubjectListError, match="4097 characters"):
        parse_subject_list("a" * 4097)


def test_names_match_without_regard_to_case():
    allowed = parse_subject_list("CUCM7-PUB.bbbburns.lab")
    assert matching_name("cucm7-pub.BBBBURNS.lab", [], allowed) == "cucm7-pub.BBBBURNS.lab"
    assert matching_name("CUCM7-SUB1.bbbburns.lab", [], allowed) is None


def test_a_san_dnsname_is_enough_when_the_cn_is_not_listed():
    allowed = ["sbc.example.com"]
    assert matching_name("SBC-01", ["sbc-01.example.com", "SBC.example.com"], allowed) == "SBC.example.com"
    assert matching_name("SBC-01", ["other.example.com"], allowed) is None


def test_wildcards_are_off_by_default_and_cover_one_label_when_on():
    assert matching_name("a.example.com", [], ["*.example.com"]) is None
    assert matching_name("a.example.com", [], ["*.example.com"], wildcards=True) == "a.example.com"
    assert matching_name("a.b.example.com", [], ["*.example.com"], wildcards=True) is None


def test_rejection_sentence_names_the_presented_name_the_list_and_the_fix():
    s = describe_rejection("CUCM7-SUB1.bbbburns.lab", [], ["CUCM7-PUB.bbbburns.lab"], "Secure TLS", "127.0.0.12")
    assert "CN=CUCM7-SUB1.bbbburns.lab" in s and "CUCM7-PUB.bbbburns.lab" in s
    assert '"Secure TLS"' in s and "add CUCM7-SUB1.bbbburns.lab" in s
