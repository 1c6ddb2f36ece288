"""Non Secure trunks (SIP over TCP on port 5060): two sipsim clusters both ways, a source that is no
trunk destination (403), and sipp (Debian's build has no TLS) as caller and as callee."""

from __future__ import annotations

import logging
import shutil
import subprocess

import pytest
import trio

from sipsim.lab import model as m
from sipsim.lab.loader import load_scenario
from sipsim.runtime.runner import LabRunner
from tests.conftest import SCENARIOS

TCP = SCENARIOS / "non-secure-tcp.toml"
SIPP = shutil.which("sipp")
needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp is not on PATH (Debian: apt-get install sip-tester)")


async def test_non_secure_lab_calls_both_ways_over_tcp(certs_base, port_offset):
    result = await LabRunner(load_scenario(TCP), port_offset=port_offset, base=certs_base).run()
    assert len(result.calls) == 4
    for c in result.calls:
        assert c.outcome == "answered", (c.id, c.reason, c.detail)
        assert c.tls_version is None and c.cipher is None and c.peer_subject is None
    assert result.connections == []  # no TLS connection records
    assert {c.origin_node for c in result.calls} == {"CUCM-A", "CUCM-B"}


async def test_via_and_contact_say_tcp_and_the_inbound_trunk_is_matched_by_source(certs_base, port_offset):
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            runner = LabRunner(load_scenario(TCP), port_offset=port_offset, base=certs_base)
            await runner.start_nodes(nursery)
            rec = await runner.place_call(1, m.CallSpec("7141001", "8521001", hold=0.05))
            assert rec.outcome == "answered", (rec.reason, rec.detail)
            invite = runner.nodes["CUCM-A"].endpoint.calls[rec.call_id].request
            assert invite.headers.get("Via").startswith(f"SIP/2.0/TCP 127.0.0.91:{5060 + port_offset};")
            assert "transport=tcp" in invite.headers.get("Contact")
            b = runner.nodes["CUCM-B"]
            assert any(c.trunk == "SIP-TCP-to-ClusterA" and c.transport == "TCP" for c in b.conns.values())
            nursery.cancel_scope.cancel()


async def test_tcp_invite_from_an_address_that_is_no_trunk_destination_gets_403(certs_base, port_offset, caplog):
    caplog.set_level(logging.INFO, logger="sipsim")
    port = 5060 + port_offset
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            runner = LabRunner(load_scenario(TCP), port_offset=port_offset, base=certs_base)
            await runner.start_nodes(nursery, only=["CUCM-A"])
            s = await trio.open_tcp_stream("127.0.0.91", port, local_address="127.0.0.99")
            invite = (f"INVITE sip:7141001@127.0.0.91:{port} SIP/2.0\r\n"
                      "Via: SIP/2.0/TCP 127.0.0.99:5060;branch=z9hG4bK-x1\r\n"
                      "From: <sip:5550100@127.0.0.99>;tag=a1\r\nTo: <sip:7141001@127.0.0.91>\r\n"
                      "Call-ID: stranger@127.0.0.99\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                      "Contact: <sip:5550100@127.0.0.99:5060;transport=tcp>\r\nContent-Length: 0\r\n\r\n")
            await s.send_all(invite.encode())
            got = b""
            while b"SIP/2.0 403" not in got:
                got += await s.receive_some(65536)
            lines = [r.getMessage() for r in caplog.records if "refused (403)" in r.getMessage()]
            assert len(lines) == 1 and "127.0.0.99" in lines[0] and "not a destination" in lines[0], lines
            await s.aclose()
            nursery.cancel_scope.cancel()


def _sipp_files(tmp_path, name):
    return ["-trace_stat", "-stf", str(tmp_path / f"{name}-stat.csv"), "-trace_msg",
            "-message_file", str(tmp_path / f"{name}-messages.log"), "-trace_err",
            "-error_file", str(tmp_path / f"{name}-errors.log")]


@pytest.mark.peer
@needs_sipp
async def test_sipp_uac_calls_a_non_secure_sipsim_node(tmp_path, certs_base, port_offset):
    """sipp (bound to 127.0.0.93, a destination of CUCM-A's trunk SIP-TCP-to-sipp) places 20 calls to
    phone 7141001 on CUCM-A over TCP; every call is answered and hung up."""
    port = 5060 + port_offset
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            runner = LabRunner(load_scenario(TCP), port_offset=port_offset, base=certs_base)
            await runner.start_nodes(nursery, only=["CUCM-A"])
            cmd = [SIPP, "-sn", "uac", "-t", "t1", "-m", "20", "-r", "10", f"127.0.0.91:{port}",
                   "-s", "7141001", "-i", "127.0.0.93", "-p", str(port), "-d", "100",
                   "-timeout", "30", "-timeout_error", "-nostdin", *_sipp_files(tmp_path, "uac")]
            done = await trio.run_process(cmd, stdout=subprocess.DEVNULL, capture_stderr=True,
                                          check=False, cwd=tmp_path)
            messages = (tmp_path / "uac-messages.log").read_text(errors="replace")
            assert done.returncode == 0, (done.stderr.decode()[-2000:], messages[-3000:])
            node = runner.nodes["CUCM-A"]
            assert node.invites_received == 20 and node.answered_inbound == 20
            assert messages.count("SIP/2.0 200 OK") >= 40  # INVITE and BYE answered
            assert "Via: SIP/2.0/TCP" in messages
            nursery.cancel_scope.cancel()


@pytest.mark.peer
@needs_sipp
async def test_a_non_secure_sipsim_trunk_calls_sipp_uas(tmp_path, certs_base, port_offset):
    """CUCM-A's trunk SIP-TCP-to-sipp points to 127.0.0.93:5060(+offset), where sipp -sn uas answers."""
    port = 5060 + port_offset
    text = TCP.read_text()
    text = text[:text.index("[[call]]")] + '[[call]]\nfrom = "7141001"\nto = "9001"\nrepeat = 5\n'
    scenario = tmp_path / "to-sipp.toml"
    scenario.write_text(text.replace('name = "non-secure-tcp"',
                                     f'name = "non-secure-tcp"\ncerts_dir = "{certs_base / "non-secure-tcp"}"'))
    cmd = [SIPP, "-sn", "uas", "-t", "t1", "-i", "127.0.0.93", "-p", str(port), "-m", "5",
           "-timeout", "30", "-timeout_error", "-nostdin", *_sipp_files(tmp_path, "uas")]
    with trio.fail_after(60):
        proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                cwd=tmp_path)
        try:
            for _ in range(100):  # until sipp listens
                try:
                    probe = await trio.open_tcp_stream("127.0.0.93", port)
                    await probe.aclose()
                    break
                except OSError:
                    await trio.sleep(0.05)
            result = await LabRunner(load_scenario(scenario), port_offset=port_offset, base=certs_base).run()
            with trio.fail_after(35):
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    messages = (tmp_path / "uas-messages.log").read_text(errors="replace")
    assert len(result.calls) == 5
    for c in result.calls:
        assert c.outcome == "answered" and c.destination == "127.0.0.93:5060", (c.reason, c.detail)
    assert code == 0, messages[-3000:]
    assert messages.count("BYE sip:") >= 5


async def test_garbage_on_the_tcp_port_closes_that_connection_only(certs_base, port_offset, caplog):
    caplog.set_level(logging.INFO, logger="sipsim")
    port = 5060 + port_offset
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            runner = LabRunner(load_scenario(TCP), port_offset=port_offset, base=certs_base)
            await runner.start_nodes(nursery)
            s = await trio.open_tcp_stream("127.0.0.91", port, local_address="127.0.0.92")
            await s.send_all(bytes(range(1, 200)) + b"\r\n\r\n")
            with trio.fail_after(3):
                while await s.receive_some(65536):
                    pass
            lines = [r.getMessage() for r in caplog.records if "bad SIP from" in r.getMessage()]
            assert len(lines) == 1 and "closing the connection" in lines[0], lines
            rec = await runner.place_call(1, m.CallSpec("8521001", "7141001", hold=0.05))
            assert rec.outcome == "answered", (rec.reason, rec.detail)
            assert not [r for r in caplog.records if r.exc_info]
            nursery.cancel_scope.cancel()
