"""The report file: the same JSON as before, one call / connection per line."""

import json

from hypothesis import given, strategies as st

from sipsim.report.jsonfile import dumps_report

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10)


@given(st.dictionaries(st.sampled_from(["scenario", "calls", "connections", "summary", "lab"]), _values))
def test_report_text_is_the_same_json(data):
    assert json.loads(dumps_report(data)) == data


def test_one_call_per_line():
    data = {"scenario": "x.toml", "summary": {"calls": 2}, "calls": [{"id": 1, "reason": None}, {"id": 2, "reason": "tls_alert"}]}
    text = dumps_report(data)
    assert '    {"id": 2, "reason": "tls_alert"}' in text.splitlines()
    assert text.splitlines()[0] == "{" and '"summary": {' in text
