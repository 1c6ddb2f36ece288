"""A two-cluster lab written as a scenario file, for tests that vary one field of it: cluster A
(node CUCM-A, trunk To-B with profile "To B") and cluster B (node CUCM-B, trunk To-A with profile
"To A"), each trunk pointing at the other cluster's node on 5061."""

from pathlib import Path

TWO_CLUSTERS = """
[lab]
name = "{name}"

[[cluster]]
name = "A"
domain = "a.lab"

  [[cluster.node]]
  name = "CUCM-A"
  address = "{a_address}"
  {a_node}

  [[cluster.security_profile]]
  name = "To B"
  x509_subject_name = "{a_list}"
  {a_profile}

  [[cluster.trunk]]
  name = "To-B"
  security_profile = "To B"
  destinations = ["{a_dest}"]
  {a_trunk}
{a_cluster}
[[cluster]]
name = "B"
domain = "b.lab"

  [[cluster.node]]
  name = "CUCM-B"
  address = "{b_address}"
  {b_node}

  [[cluster.security_profile]]
  name = "To A"
  x509_subject_name = "CUCM-A.a.lab"
  {b_profile}

  [[cluster.trunk]]
  name = "To-A"
  security_profile = "To A"
  destinations = ["CUCM-A.a.lab:5061"]
{b_cluster}
{calls}
"""

#: what `sipsim run` needs to place a call each way: route patterns, phones, calls
CALLS_EACH_WAY = dict(
    a_cluster='''
  [[cluster.route_pattern]]
  pattern = "2XXX"
  trunk = "To-B"

  [[cluster.phone]]
  dn = "1000"
  node = "CUCM-A"
''',
    b_cluster='''
  [[cluster.route_pattern]]
  pattern = "1XXX"
  trunk = "To-A"

  [[cluster.phone]]
  dn = "2000"
  node = "CUCM-B"
''',
    calls='''
[[call]]
from = "1000"
to = "2000"

[[call]]
from = "2000"
to = "1000"
''')


def two_clusters(tmp_path: Path, name: str, **fields) -> Path:
    """The lab with ``fields`` filled in (lines for the node, profile and trunk tables, or whole
    tables after each cluster), written to ``tmp_path/name.toml``."""
    values = dict(name=name, a_address="127.0.0.201", b_address="127.0.0.202", a_node="", b_node="",
                  a_list="CUCM-B.b.lab", a_profile="", a_dest="CUCM-B.b.lab:5061", a_trunk="", b_profile="",
                  a_cluster="", b_cluster="", calls="")
    values.update(fields)
    path = tmp_path / f"{name}.toml"
    path.write_text(TWO_CLUSTERS.format(**values))
    return path
