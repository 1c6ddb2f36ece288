"""µs per operation of the sans-IO SIP core alone (no network, no trio, no TLS), bounded (< 30 s).

(a) parse: the five messages of a call's critical path — an INVITE with SDP, its 200 OK with SDP,
    the ACK, a BYE and the 200 OK to the BYE — each fed to a connection's ``MessageReader`` and
    pulled with ``next_message()`` until None, exactly as ``Endpoint.receive_data`` does, then the
    fields the endpoint reads on receipt (top-Via branch, CSeq, Call-ID, From/To tags). The wire
    bytes are what two real endpoints produce, taken from 1,000 different calls and cycled, so the
    per-call lines (Via, Call-ID, tags, SDP) are new to the parser each time, as in a real run.
(b) build + serialise: every message a UAC and a UAS send for one call (INVITE, ACK, BYE; 100,
    180, 200, 200 to BYE), rebuilt as ``Request``/``Response`` from their header lists
    (``Headers.add`` per field) and serialised; plus the UAS's own ``_response`` builder for
    180/200 (what ``answer`` runs) serialised.
(c) call: two ``Endpoint``s wired back-to-back in memory: UAC ``place_call`` → bytes → UAS
    ``receive_data`` → ``answer`` → bytes → … → BYE → 200, every action drained; µs per whole call
    for both sides' SIP core together.

Figures are process CPU µs (the machine is shared: time spent descheduled is not the SIP core's).
Prints one line (median of the repetitions, min, max) and writes out/bench/sip_core.json.
``--quick`` runs fewer iterations (a smoke test)."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _common as c  # noqa: E402

from sipsim.sip.endpoint import Endpoint, EndpointConfig  # noqa: E402
from sipsim.sip.events import CallAnswered, IncomingCall, Transmit  # noqa: E402
from sipsim.sip.message import Headers, Request, Response, serialise  # noqa: E402
from sipsim.sip.parser import MessageReader  # noqa: E402

CONN = "link"


class BackToBack:
    """A UAC and a UAS endpoint, each Transmit of one fed to the other at once."""

    def __init__(self, seed: int = 1):
        self.a = Endpoint(EndpointConfig(host="127.0.0.11", port=5061, seed=seed))
        self.b = Endpoint(EndpointConfig(host="127.0.0.21", port=5061, seed=seed + 1))
        self.sent: list[tuple[str, Transmit]] = []  # filled only when record=True
        self.record = False

    def pump(self) -> tuple[list, list]:
        """Deliver until both sides are quiet; the non-Transmit actions of (a, b)."""
        a, b = self.a, self.b
        events_a: list = []
        events_b: list = []
        moved = True
        while moved:
            moved = False
            for src, dst, events, side in ((a, b, events_a, "a"), (b, a, events_b, "b")):
                for act in src.drain():
                    moved = True
                    if type(act) is Transmit:
                        if self.record:
                            self.sent.append((side, act))
                        dst.receive_data(CONN, act.data, 0.0)
                    else:
                        events.append(act)
        return events_a, events_b

    def call(self) -> None:
        a, b = self.a, self.b
        call_id = a.place_call(CONN, 0.0, caller="7131001", called="8511001",
                               request_uri="sip:8511001@127.0.0.21:5061")
        _, events_b = self.pump()
        incoming = [e for e in events_b if type(e) is IncomingCall]
        assert incoming, "the UAS saw no INVITE"
        b.answer(incoming[0].call_id, 0.0)
        events_a, _ = self.pump()
        assert any(type(e) is CallAnswered for e in events_a), "the call was not answered"
        a.hang_up(call_id, 0.0)
        self.pump()
        assert a.calls[call_id].ended and b.calls[call_id].ended
        a.forget(call_id)
        b.forget(call_id)


def one_call_wire() -> list[tuple[str, Transmit]]:
    """The Transmits of one call, in order: ("a"|"b", Transmit)."""
    w = BackToBack(seed=7)
    w.record = True
    w.call()
    return w.sent


def many_calls_wire(count: int) -> list[dict[str, bytes]]:
    """The five parse-set messages of ``count`` different calls (own Call-IDs, tags, branches, SDP)."""
    w = BackToBack(seed=13)
    w.record = True
    out = []
    for _ in range(count):
        w.sent = []
        w.call()
        out.append(pick_parse_set(w.sent))
    return out


def first_word(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode()
    return line.split(" ")[1] if line.startswith("SIP/2.0") else line.split(" ")[0]


def pick_parse_set(sent: list[tuple[str, Transmit]]) -> dict[str, bytes]:
    """INVITE, 200 (INVITE, with SDP), ACK, BYE, 200 (BYE) as wire bytes."""
    out: dict[str, bytes] = {}
    for _, t in sent:
        msg = t.message
        if isinstance(msg, Request):
            out.setdefault(msg.method, t.data)
        elif msg.status == 200:
            out.setdefault(f"200-{msg.headers.get('CSeq').split()[1]}", t.data)
    return {"INVITE": out["INVITE"], "200-INVITE": out["200-INVITE"], "ACK": out["ACK"], "BYE": out["BYE"],
            "200-BYE": out["200-BYE"]}


def parse_once(data: bytes, reader: MessageReader | None = None):
    """What ``Endpoint.receive_data`` does with the bytes of one message: feed the connection's
    reader, pull messages until None, then read the fields the endpoint needs from every message."""
    if reader is None:
        reader = MessageReader()
    reader.feed(data)
    msg = reader.next_message()
    assert reader.next_message() is None
    msg.top_via_branch, msg.call_id, msg.cseq, msg.from_tag, msg.to_tag  # noqa: B018
    return msg


def timed(fn, n: int) -> float:
    """CPU µs per call of fn() over n calls (process CPU time: the machine is shared, and time spent
    descheduled is not the SIP core's cost)."""
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1e6


def bench_parse(variants: list[dict[str, bytes]], n: int) -> dict[str, float]:
    """Each kind of message parsed ``n`` times, cycling through the variants of different calls, so
    that per-call lines (Via, Call-ID, From/To with their tags) are new to the parser as they are
    in a real run, while the lines every call repeats (Max-Forwards, Allow, CSeq...) repeat here too."""
    out = {}
    kinds = list(variants[0])
    for kind in kinds:
        reader = MessageReader()  # one per connection, as the endpoint keeps them
        datas = [v[kind] for v in variants]
        rounds = max(1, n // len(datas))
        t0 = time.process_time()
        for _ in range(rounds):
            for data in datas:
                parse_once(data, reader)
        out[kind] = (time.process_time() - t0) / (rounds * len(datas)) * 1e6
    out["per_message"] = sum(out[k] for k in kinds) / len(kinds)
    return out


def rebuild(msg):
    h = Headers()
    for name, value in msg.headers.items():
        h.add(name, value)
    if isinstance(msg, Request):
        return Request(msg.method, msg.uri, h, msg.body)
    return Response(msg.status, msg.reason, h, msg.body)


def bench_build(sent: list[tuple[str, Transmit]], invite_in: Request, n: int) -> dict[str, float]:
    messages = [t.message for _, t in sent]

    def all_messages():
        for m in messages:
            serialise(rebuild(m))

    uas = Endpoint(EndpointConfig(host="127.0.0.21", seed=3))

    def uas_responses():
        serialise(uas._response(invite_in, 180, to_tag="abc123", contact=True))
        serialise(uas._response(invite_in, 200, to_tag="abc123", body=invite_in.body, contact=True))

    per_call = timed(all_messages, n)
    return {"per_call": per_call, "per_message": per_call / len(messages), "messages": len(messages),
            "uas_180_200": timed(uas_responses, n)}


def bench_call(n: int) -> float:
    w = BackToBack(seed=11)
    w.call()  # warm up
    return timed(w.call, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="few iterations (smoke test)")
    args = ap.parse_args()
    c.hard_timeout(60)
    scale = 0.1 if args.quick else 1.0
    n_parse, n_build, n_call = int(2000 * scale) or 1, int(1000 * scale) or 1, int(600 * scale) or 1

    sent = one_call_wire()
    msgs = pick_parse_set(sent)
    variants = many_calls_wire(max(1, n_parse // 2))
    invite_in = parse_once(msgs["INVITE"])
    runs: dict[str, list[float]] = {}
    detail: list[dict] = []
    t_start = time.monotonic()
    gc.collect()
    for _ in range(args.runs):
        p = bench_parse(variants, n_parse)
        b = bench_build(sent, invite_in, n_build)
        call = bench_call(n_call)
        detail.append({"parse": p, "build": b, "call_us": call})
        for key, value in (("parse_per_message_us", p["per_message"]), ("build_serialise_per_message_us",
                                                                         b["per_message"]),
                           ("build_serialise_per_call_us", b["per_call"]), ("uas_180_200_us", b["uas_180_200"]),
                           ("call_us", call), *((f"parse_{k}_us", v) for k, v in p.items() if k != "per_message")):
            runs.setdefault(key, []).append(value)
        if time.monotonic() - t_start > 25:
            break
    s = {k: c.summarise(v) for k, v in runs.items()}
    line = (f"SIP core: parse {c.fmt(s['parse_per_message_us'], 'µs/message', 1)}; "
            f"build+serialise {c.fmt(s['build_serialise_per_message_us'], 'µs/message', 1)}; "
            f"back-to-back call {c.fmt(s['call_us'], 'µs/call')} "
            f"(≈ {1e6 / s['call_us']['median']:.0f} calls/s for both sides' SIP core on one core)")
    print(line)
    path = c.write("sip_core", {"summary": s, "runs": detail, "messages": {k: len(v) for k, v in msgs.items()},
                                "iterations": {"parse": n_parse, "build": n_build, "call": n_call},
                                "parse_variants": len(variants),
                                "line": line, "python": sys.version.split()[0]})
    print(f"  per message parse (median µs): " + ", ".join(
        f"{k} {s[f'parse_{k}_us']['median']:.1f}" for k in msgs) + f"; UAS 180+200 build+serialise "
          f"{s['uas_180_200_us']['median']:.1f} µs; JSON: {path.relative_to(c.ROOT)}")


if __name__ == "__main__":
    main()
