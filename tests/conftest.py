import itertools
import os
import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"

_offsets = itertools.count(random.Random(os.getpid()).randrange(20, 200) * 100)


@pytest.fixture
def port_offset():
    """A fresh port offset per test, so labs never collide with each other or a running demo."""
    return next(_offsets)


@pytest.fixture(scope="session")
def certs_base(tmp_path_factory):
    """Where labs made by tests keep their certificates (shared by the session: made once)."""
    return tmp_path_factory.mktemp("labs")
