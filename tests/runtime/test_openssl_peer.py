"""A running node against a real peer: `openssl s_client` with and without a client certificate."""

import contextlib
import shutil

import pytest
import trio

from sipsim.lab.loader import load_scenario
from sipsim.runtime.runner import LabRunner
from tests.conftest import SCENARIOS

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

OPTIONS = (b"OPTIONS sip:127.0.0.21:5061 SIP/2.0\r\n"
           b"Via: SIP/2.0/TLS 127.0.0.11:5061;branch=z9hG4bK-openssl-1\r\n"
           b"From: <sip:ping@127.0.0.11>;tag=abc\r\nTo: <sip:127.0.0.21>\r\n"
           b"Call-ID: openssl-ping-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


class Result:
    def __init__(self, stdout: bytes, stderr: bytes):
        self.stdout, self.stderr = stdout, stderr


async def s_client(port, *args, stdin=OPTIONS, wait=1.5, quiet=True):
    """Run s_client, send ``stdin``, collect what it prints for ``wait`` seconds, then stop it."""
    import subprocess

    cmd = ["openssl", "s_client", "-connect", f"127.0.0.21:{port}", "-bind", "127.0.0.11:0",
           "-ign_eof", *(["-quiet"] if quiet else []), "-verify_return_error", *map(str, args)]
    proc = await trio.lowlevel.open_process(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE)
    out, err = bytearray(), bytearray()

    async def pump(stream, into):
        try:
            async for chunk in stream:
                into += chunk
        except trio.ClosedResourceError:
            pass

    try:
        async with trio.open_nursery() as n:
            n.start_soon(pump, proc.stdout, out)
            n.start_soon(pump, proc.stderr, err)
            await proc.stdin.send_all(stdin)
            await trio.sleep(wait)
            n.cancel_scope.cancel()
    finally:
        proc.kill()
        await proc.wait()
    return Result(bytes(out), bytes(err))


async def serve_cucm8(certs_base, port_offset):
    scenario = load_scenario(SCENARIOS / "seed-000-self-signed.toml")
    runner = LabRunner(scenario, port_offset=port_offset, base=certs_base)
    return runner


async def test_s_client_with_the_subscribers_certificate_gets_200_to_options(certs_base, port_offset):
    runner = await serve_cucm8(certs_base, port_offset)
    async with trio.open_nursery() as nursery:
        await runner.start_nodes(nursery, only=["CUCM8-Publisher"])
        files = runner.ctx.pki.files("CUCM7-SUB1.bbbburns.lab")
        trust = runner.ctx.pki.trust_file("CUCM8-Publisher.bbbburns.lab")
        proc = await s_client(5061 + port_offset, "-cert", files.cert, "-key", files.key, "-CAfile", trust)
        nursery.cancel_scope.cancel()
    out = proc.stdout.decode(errors="replace")
    assert "SIP/2.0 200 OK" in out, proc.stderr.decode(errors="replace")
    assert "CSeq: 1 OPTIONS" in out


async def test_s_client_without_a_certificate_is_refused_in_the_handshake(certs_base, port_offset):
    runner = await serve_cucm8(certs_base, port_offset)
    async with trio.open_nursery() as nursery:
        await runner.start_nodes(nursery, only=["CUCM8-Publisher"])
        trust = runner.ctx.pki.trust_file("CUCM8-Publisher.bbbburns.lab")
        proc = await s_client(5061 + port_offset, "-CAfile", trust)
        node = runner.nodes["CUCM8-Publisher"]
        nursery.cancel_scope.cancel()
    assert b"SIP/2.0" not in proc.stdout
    assert [f.reason for f in node.inbound_failures] == ["tls_no_peer_cert"]
    assert "127.0.0.11" in node.inbound_failures[0].detail


def _pub_only_runner(certs_base, port_offset, tmp_path, profile_extra: str = "") -> LabRunner:
    """seed-000 with CUCM8's profile for CUCM7 listing only CUCM7-PUB (plus ``profile_extra`` lines)."""
    text = (SCENARIOS / "seed-000-self-signed.toml").read_text().replace(
        'x509_subject_name = "CUCM7-PUB.bbbburns.lab, CUCM7-SUB1.bbbburns.lab"',
        'x509_subject_name = "CUCM7-PUB.bbbburns.lab"' + profile_extra)
    path = tmp_path / "variant.toml"
    path.write_text(text.replace('name = "seed-000"', 'name = "seed-000"\ncerts_dir = "certs/seed-000"'))
    return LabRunner(load_scenario(path), port_offset=port_offset, base=certs_base)


async def test_s_client_with_a_trusted_but_unlisted_name_is_refused(certs_base, port_offset, tmp_path):
    # CUCM7-SUB1's certificate is trusted by CUCM8-Publisher; a profile listing only CUCM7-PUB refuses it
    runner = _pub_only_runner(certs_base, port_offset, tmp_path)
    async with trio.open_nursery() as nursery:
        await runner.start_nodes(nursery, only=["CUCM8-Publisher"])
        files = runner.ctx.pki.files("CUCM7-SUB1.bbbburns.lab")
        trust = runner.ctx.pki.trust_file("CUCM8-Publisher.bbbburns.lab")
        proc = await s_client(5061 + port_offset, "-cert", files.cert, "-key", files.key, "-CAfile", trust)
        node = runner.nodes["CUCM8-Publisher"]
        nursery.cancel_scope.cancel()
    assert b"SIP/2.0" not in proc.stdout
    assert [f.reason for f in node.inbound_failures] == ["subject_not_allowed"]
    assert "CUCM7-SUB1.bbbburns.lab" in node.inbound_failures[0].detail
    assert "alert" in proc.stderr.decode(errors="replace").lower()


async def _s_client_session(port, files, trust, *args, version="1.2"):
    """One s_client connection (stdin closed at once): what it prints (New/Reused, the ticket).
    Under TLS 1.3 the tickets come after the handshake: s_client then stays (-ign_eof) 1 s to
    read them, and is stopped."""
    import subprocess

    flag = {"1.2": "-tls1_2", "1.3": "-tls1_3"}[version]
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.21:{port}", "-bind", "127.0.0.11:0", flag,
           "-cert", files.cert, "-key", files.key, "-CAfile", trust, "-verify_return_error", *map(str, args)]
    if version == "1.2":
        done = await trio.run_process(cmd, stdin=b"", capture_stdout=True, capture_stderr=True, check=False)
        return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    proc = await s_client(port, *cmd[6:], stdin=b"", wait=1.0, quiet=False)
    return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


@contextlib.asynccontextmanager
async def _cucm8_for_cucm7_pub(certs_base, port_offset):
    """seed-000's CUCM8-Publisher serving; yields (port, CUCM7-PUB's files, the trust file for
    CUCM8, the node's event lines)."""
    runner = await serve_cucm8(certs_base, port_offset)
    events = []
    async with trio.open_nursery() as nursery:
        await runner.start_nodes(nursery, only=["CUCM8-Publisher"])
        runner.nodes["CUCM8-Publisher"].on_event = lambda text, kind: events.append(text)
        yield (5061 + port_offset, runner.ctx.pki.files("CUCM7-PUB.bbbburns.lab"),
               runner.ctx.pki.trust_file("CUCM8-Publisher.bbbburns.lab"), events)
        nursery.cancel_scope.cancel()


async def test_a_client_offering_its_ticket_or_its_session_id_resumes(certs_base, port_offset, tmp_path):
    # sipsim's own client never resumes, but a node as server lets a peer resume (seed 003's CUCM
    # sends a New Session Ticket): by ticket, or by session ID (OpenSSL's server session cache)
    async with _cucm8_for_cucm7_pub(certs_base, port_offset) as (port, files, trust, events):
        ticket, session_id = tmp_path / "ticket.pem", tmp_path / "session-id.pem"
        first = await _s_client_session(port, files, trust, "-sess_out", ticket)
        again = await _s_client_session(port, files, trust, "-sess_in", ticket)
        first_id = await _s_client_session(port, files, trust, "-no_ticket", "-sess_out", session_id)
        again_id = await _s_client_session(port, files, trust, "-no_ticket", "-sess_in", session_id)
    assert "New, TLSv1.2" in first and "TLS session ticket:" in first, first
    assert "Reused, TLSv1.2" in again, again
    assert "New, TLSv1.2" in first_id and "TLS session ticket:" not in first_id, first_id
    assert "Reused, TLSv1.2" in again_id, again_id
    # the node's line for each connection (serve prints it) says which ones resumed
    tls_lines = [e for e in events if "✓ TLS from" in e]
    assert ["(resumed session)" in e for e in tls_lines] == [False, True, False, True], tls_lines


async def test_a_tls13_client_resumes_with_a_ticket_that_names_the_session(certs_base, port_offset, tmp_path):
    # Under TLS 1.3 a node's tickets are stateful: the session stays in the node's session cache
    # and the ticket only names it (a stateless one would carry the session, client certificate
    # included, encrypted: ~1 kB). A peer resumes with it all the same.
    async with _cucm8_for_cucm7_pub(certs_base, port_offset) as (port, files, trust, events):
        ticket = tmp_path / "ticket.pem"
        first = await _s_client_session(port, files, trust, "-sess_out", ticket, version="1.3")
        again = await _s_client_session(port, files, trust, "-sess_in", ticket, version="1.3")
    assert "New, TLSv1.3" in first, first
    assert "Reused, TLSv1.3" in again, again
    # the ticket s_client saved: a few dozen bytes (a stateless one here is ~1 kB)
    done = await trio.run_process(["openssl", "sess_id", "-in", str(ticket), "-text", "-noout"],
                                  capture_stdout=True, check=False)
    text = done.stdout.decode(errors="replace")
    dump = text.split("TLS session ticket:", 1)[1].strip().splitlines()
    ticket_bytes = sum(len(line.split(" - ", 1)[1][:48].replace("-", " ").split())
                       for line in dump if " - " in line)
    assert 16 <= ticket_bytes <= 64, text
    tls_lines = [e for e in events if "✓ TLS from" in e]
    assert ["(resumed session)" in e for e in tls_lines] == [False, True], tls_lines


async def test_a_resumed_session_is_judged_by_the_security_profile_too(certs_base, port_offset, tmp_path):
    # A ticket resumes without a certificate exchange, so no verify callback runs; the profile's
    # X.509 Subject Name check must still apply (here: close right after the handshake)
    runner = _pub_only_runner(certs_base, port_offset, tmp_path, '\nsubject_mismatch = "close"')
    port = 5061 + port_offset
    async with trio.open_nursery() as nursery:
        await runner.start_nodes(nursery, only=["CUCM8-Publisher"])
        files = runner.ctx.pki.files("CUCM7-SUB1.bbbburns.lab")
        trust = runner.ctx.pki.trust_file("CUCM8-Publisher.bbbburns.lab")
        ticket = tmp_path / "ticket.pem"
        first = await _s_client_session(port, files, trust, "-sess_out", ticket)
        again = await _s_client_session(port, files, trust, "-sess_in", ticket)
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    assert "New, TLSv1.2" in first and "Reused, TLSv1.2" in again, again
    views = list(runner.ctx._server_views.values())
    assert [(v.reason, v.action) for v in views] == [("subject_not_allowed", "close")] * 2
    assert "CUCM7-SUB1.bbbburns.lab" in views[1].detail
