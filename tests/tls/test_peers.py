"""TLSStream against real OpenSSL programs (`openssl s_server` / `s_client`) on 127.0.0.1."""

import os
import shutil
import socket
import subprocess

import pytest
import trio

from sipsim.tls import TLSFailure, TLSStream, build_context

from .helpers import cfg_for, transcript
from .test_reasons import SEED_003

OPENSSL = shutil.which("openssl")
pytestmark = [pytest.mark.peer, pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not on PATH")]

ENV = dict(os.environ, OPENSSL_CONF="/dev/null")     # no distribution policy (SECLEVEL, MinProtocol)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """An openssl process with its stdout/stderr collected in the background."""

    def __init__(self, args):
        self.args = [OPENSSL, *args]
        self.out = bytearray()
        self.proc = None

    async def start(self, nursery):
        self.proc = await trio.lowlevel.open_process(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
        nursery.start_soon(self._pump)

    async def _pump(self):
        try:
            while True:
                chunk = await self.proc.stdout.receive_some(65536)
                if not chunk:
                    return
                self.out += chunk
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return

    async def wait_for(self, text: bytes, timeout=10):
        with trio.fail_after(timeout):
            while text not in self.out:
                if self.proc.returncode is not None:
                    raise AssertionError(f"openssl exited: {bytes(self.out)!r}")
                await trio.sleep(0.02)

    async def write(self, data: bytes):
        await self.proc.stdin.send_all(data)

    def kill(self):
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")


async def run_s_server(args, body):
    port = free_port()
    p = Proc(["s_server", "-accept", f"127.0.0.1:{port}", "-naccept", "1", *args])
    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as n:
                await p.start(n)
                await p.wait_for(b"ACCEPT")
                await body(p, port)
                p.kill()
    finally:
        p.kill()
    return p


async def tls_client(lab_ident, trust, port, **cfg):
    t = await trio.open_tcp_stream("127.0.0.1", port)
    ctx = build_context(cfg_for(lab_ident, trust=trust, **cfg), server_side=False)
    return TLSStream(t, ctx, server_side=False, local=t.socket.getsockname()[:2], remote=("127.0.0.1", port),
                     peer_name="openssl-s_server")


@pytest.mark.parametrize("flag,version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
async def test_client_against_s_server_mutual(lab, flag, version):
    result = {}

    async def body(p, port):
        s = await tls_client(lab.a, [lab.b.trust], port)
        await s.do_handshake()
        await s.send_all(b"OPTIONS sip:cucm-b.lab.example:5061 SIP/2.0\r\n\r\n")
        await p.wait_for(b"OPTIONS sip:cucm-b.lab.example:5061")
        await p.write(b"SIP/2.0 200 OK\n")
        result["reply"] = await s.receive_some()
        result["record"] = s.record
        await s.aclose()

    p = await run_s_server(["-cert", str(lab.b.cert), "-key", str(lab.b.key), "-CAfile", str(lab.a.trust),
                            "-Verify", "1", "-verify_return_error", flag], body)
    r = result["record"]
    assert r.version == version
    assert [c.cn for c in r.peer_chain] == [lab.b.cn]
    assert result["reply"] == b"SIP/2.0 200 OK\n"
    assert f"CN = {lab.a.cn}" in p.text          # s_server verified our client certificate
    assert r.ca_names == [f"CN={lab.a.cn},OU=cisco,O=cisco,L=cisco,ST=cisco,C=IN"]


async def test_client_against_s_server_tls10_aes128_sha(lab):
    result = {}

    async def body(p, port):
        s = await tls_client(lab.a, [lab.b.trust], port, min_version="1.0", max_version="1.0", ciphers="AES128-SHA")
        await s.do_handshake()
        await s.send_all(b"INVITE sip:9898@127.0.0.1:5061 SIP/2.0\r\n\r\n")
        await p.wait_for(b"INVITE sip:9898")
        result["record"] = s.record
        result["transcript"] = transcript(s.record)
        await s.aclose()

    p = await run_s_server(["-cert", str(lab.b.cert), "-key", str(lab.b.key), "-CAfile", str(lab.a.trust),
                            "-Verify", "1", "-verify_return_error", "-tls1", "-cipher", "AES128-SHA@SECLEVEL=0"],
                           body)
    r = result["record"]
    assert (r.version, r.cipher) == ("TLSv1.0", "AES128-SHA")
    assert result["transcript"] == SEED_003
    assert transcript(r)[-1] == ("sent", ["Application Data", "Alert (Level: Warning, Description: Close Notify)"])
    assert "Shared ciphers:AES128-SHA" in p.text or "AES128-SHA" in p.text


async def test_s_server_does_not_trust_us(lab):
    result = {}

    async def body(p, port):
        s = await tls_client(lab.a, [lab.b.trust], port, max_version="1.2")
        with pytest.raises(TLSFailure) as info:
            await s.do_handshake()
        result["failure"] = info.value

    await run_s_server(["-cert", str(lab.b.cert), "-key", str(lab.b.key), "-CAfile", str(lab.c.trust),
                        "-Verify", "1", "-verify_return_error", "-tls1_2"], body)
    f = result["failure"]
    assert f.reason == "tls_unknown_ca"
    assert f.record.alert_received in ("unknown_ca", "bad_certificate", "certificate_unknown")
    assert f.detail.startswith("openssl-s_server (127.0.0.1:")


async def test_we_do_not_trust_s_server(lab):
    result = {}

    async def body(p, port):
        s = await tls_client(lab.a, [lab.c.trust], port)
        with pytest.raises(TLSFailure) as info:
            await s.do_handshake()
        result["failure"] = info.value

    p = await run_s_server(["-cert", str(lab.b.cert), "-key", str(lab.b.key), "-CAfile", str(lab.a.trust),
                            "-Verify", "1"], body)
    f = result["failure"]
    assert f.reason == "tls_unknown_ca"
    assert f.record.alert_sent == "unknown_ca"
    assert f"CN={lab.b.cn}" in f.detail


async def test_s_server_tls10_only_against_our_tls12_minimum(lab):
    result = {}

    async def body(p, port):
        s = await tls_client(lab.a, [lab.b.trust], port)
        with pytest.raises(TLSFailure) as info:
            await s.do_handshake()
        result["failure"] = info.value

    await run_s_server(["-cert", str(lab.b.cert), "-key", str(lab.b.key), "-tls1",
                        "-cipher", "AES128-SHA@SECLEVEL=0"], body)
    assert result["failure"].reason == "tls_protocol_version"


# ---------------------------------------------------------------------------- s_client → TLSStream
async def serve_one(lab, client_args, *, server_cfg=None, data_exchange=True):
    """A TLSStream server on 127.0.0.1:<free>; openssl s_client connects with client_args."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    port = listener.socket.getsockname()[1]
    ctx = build_context(server_cfg or cfg_for(lab.b, trust=[lab.a.trust]), server_side=True)
    p = Proc(["s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(lab.b.trust), *client_args])
    out = {}
    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as n:
                await p.start(n)
                t = await listener.accept()
                s = TLSStream(t, ctx, server_side=True, local=("127.0.0.1", port),
                              remote=t.socket.getpeername()[:2], local_name="CUCM-B")
                try:
                    await s.do_handshake()
                except TLSFailure as exc:
                    out["failure"] = exc
                    await s.aclose()
                else:
                    if data_exchange:
                        await p.write(b"OPTIONS sip:cucm-b.lab.example SIP/2.0\n")
                        got = b""
                        while b"\n" not in got:
                            got += await s.receive_some()
                        out["got"] = got
                        await s.send_all(b"SIP/2.0 200 OK\n")
                        await p.wait_for(b"SIP/2.0 200 OK")
                    await s.aclose()
                with trio.move_on_after(5):
                    await p.proc.wait()
                p.kill()
    finally:
        p.kill()
        await listener.aclose()
    out["record"] = s.record
    out["client_output"] = p.text
    return out


@pytest.mark.parametrize("flag,version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
async def test_s_client_with_certificate(lab, flag, version):
    out = await serve_one(lab, ["-cert", str(lab.a.cert), "-key", str(lab.a.key), "-verify_return_error", flag])
    r = out["record"]
    assert "failure" not in out, out.get("failure")
    assert r.version == version and r.role == "server"
    assert [c.cn for c in r.peer_chain] == [lab.a.cn]
    assert out["got"] == b"OPTIONS sip:cucm-b.lab.example SIP/2.0\n"
    assert "Verify return code: 0 (ok)" in out["client_output"]
    assert "Acceptable client certificate CA names" in out["client_output"]
    assert f"CN = {lab.a.cn}" in out["client_output"]       # our CertificateRequest CA list


async def test_s_client_without_certificate(lab):
    out = await serve_one(lab, ["-tls1_2"])
    assert out["failure"].reason == "tls_no_peer_cert"
    assert out["record"].alert_sent == "handshake_failure"
    assert "alert handshake failure" in out["client_output"]


async def test_s_client_untrusted_certificate(lab):
    out = await serve_one(lab, ["-cert", str(lab.c.cert), "-key", str(lab.c.key), "-tls1_2"])
    assert out["failure"].reason == "tls_unknown_ca"
    assert "CUCM-B does not trust" in out["failure"].detail
    assert "alert unknown ca" in out["client_output"]


async def test_s_client_tls1_against_tls12_minimum(lab):
    out = await serve_one(lab, ["-cert", str(lab.a.cert), "-key", str(lab.a.key), "-tls1",
                                "-cipher", "AES128-SHA@SECLEVEL=0"])
    assert out["failure"].reason == "tls_protocol_version"
    assert out["record"].alert_sent == "protocol_version"


async def test_s_client_plaintext_is_not_tls(lab):
    # a plain TCP client sending SIP to the TLS port
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    ctx = build_context(cfg_for(lab.b, trust=[lab.a.trust]), server_side=True)
    with trio.fail_after(10):
        client = await trio.open_tcp_stream("127.0.0.1", port)
        t = await listeners[0].accept()
        s = TLSStream(t, ctx, server_side=True, remote=t.socket.getpeername()[:2])
        await client.send_all(b"OPTIONS sip:127.0.0.1:5061;transport=tcp SIP/2.0\r\n\r\n")
        with pytest.raises(TLSFailure) as info:
            await s.do_handshake()
        await client.aclose()
        await listeners[0].aclose()
    assert info.value.reason == "tls_handshake_failed"
    assert "did not speak TLS" in info.value.detail
