import pytest

from .certs import CA, self_signed


class Lab:
    def __init__(self, d):
        self.dir = d
        self.a = self_signed(d, "cucm-a.lab.example")          # "CUCM A" (client)
        self.b = self_signed(d, "cucm-b.lab.example")          # "CUCM B" (server)
        self.c = self_signed(d, "stranger.lab.example")        # trusted by nobody


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    return Lab(tmp_path_factory.mktemp("tlslab"))


@pytest.fixture(scope="session")
def ca_lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("calab")
    root = CA(d)
    inter = root.intermediate()
    return {"root": root, "inter": inter, "dir": d}
