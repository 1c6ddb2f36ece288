"""A call of the report as a ladder diagram: columns caller phone | origin node | destination node(s) |
called phone, one row per event with its time (ms from the moment the call was placed):

- the TCP connection the call needed (or a note that it reused one opened earlier),
- each flight of the TLS handshake (client ↔ server, the flight's messages joined by ", "),
- each SIP message the origin node sent ("out") or received ("in"),
- failed attempts and the failure in red.

Times of TLS flights come from the connection's transcript (relative to the connection's start); the
connection's start is placed on the call's clock by matching its first Application Data flight with
the call's first SIP message (when the connection carried the call), else at the attempt's start.
`render_text` gives a terminal ladder (rich markup), `render_svg` a self-contained SVG.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from sipsim.report.transcript import flight_label, handshake_flights


@dataclass
class Row:
    t: float | None
    src: int
    dst: int
    label: str
    kind: str          # "phone", "tcp", "tls", "sip", "note"
    failed: bool = False

    @property
    def arrow(self) -> bool:
        return self.src != self.dst


@dataclass
class Ladder:
    call: dict
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[tuple[str, bool]] = field(default_factory=list)  # (sentence, failed)

    @property
    def title(self) -> str:
        c = self.call
        result = f"answered {c.get('status')}" if c.get("outcome") == "answered" else \
            f"failed: {c.get('reason')}" + (f" {c['status']}" if c.get("status") else "")
        return (f"call {c['id']}: {c.get('caller')} → {c.get('called')}"
                + (f" ({c['pattern']})" if c.get("pattern") else "")
                + (f" over {c['trunk']}" if c.get("trunk") else "") + f" — {result}")


def find_call(report: dict, call_id: int | None) -> dict | None:
    calls = report.get("calls") or []
    if call_id is None:
        failed = [c for c in calls if c.get("outcome") != "answered"]
        return failed[0] if failed else (calls[0] if calls else None)
    return next((c for c in calls if c.get("id") == call_id), None)


def _first_line(line: str) -> str:
    return line.split("\r\n", 1)[0].split("\n", 1)[0]


def _is_failure_status(line: str) -> bool:
    parts = line.split()
    return len(parts) >= 2 and parts[0].startswith("SIP/") and parts[1].isdigit() and int(parts[1]) >= 400


def build(report: dict, call: dict) -> Ladder:
    conns = report.get("connections") or []
    origin = call.get("origin_node") or "origin"
    dest_cols: list[str] = []
    for a in call.get("attempts") or []:
        name = a.get("destination_node") or a.get("destination") or "?"
        if name not in dest_cols:
            dest_cols.append(name)
    if not dest_cols:
        dest_cols.append(call.get("destination_node") or call.get("destination") or "(no destination)")
    columns = [f"{call.get('caller')} (phone)", origin, *dest_cols, f"{call.get('called')} (phone)"]
    lad = Ladder(call, columns)
    ORIG, CALLED = 1, len(columns) - 1
    rows = lad.rows

    dial = f"dials {call.get('called')}"
    if call.get("pattern"):
        dial += f" → {call['pattern']} → {call.get('trunk')}"
    rows.append(Row(0.0, 0, ORIG, dial, "phone"))
    if not call.get("attempts"):
        rows.append(Row(0.0, ORIG, ORIG, f"✗ {call.get('reason')}", "note", True))
        if call.get("detail"):
            lad.notes.append((f"{call.get('reason')}: {call['detail']}", True))

    # connections already used by earlier calls (or earlier attempts of this one)
    used_before: dict[int, int] = {}
    for c in report.get("calls") or []:
        if c.get("id") == call.get("id"):
            break
        for a in c.get("attempts") or []:
            if a.get("connection") is not None:
                used_before.setdefault(a["connection"], c["id"])

    messages = call.get("messages") or []
    attempts = call.get("attempts") or []
    start = 0.0
    for i, a in enumerate(attempts):
        dcol = 2 + dest_cols.index(a.get("destination_node") or a.get("destination") or "?")
        last = i == len(attempts) - 1
        ci = a.get("connection")
        conn = conns[ci] if ci is not None and 0 <= ci < len(conns) else None
        label_n = f"attempt {i + 1}: " if len(attempts) > 1 else ""
        if conn is None:
            reason = a.get("reason")
            if reason == "dns_failure":
                rows.append(Row(start, ORIG, ORIG, f"✗ {label_n}{a.get('destination')} does not resolve (dns_failure)",
                                "note", True))
            elif reason in ("connect_refused", "connect_failed", "timeout"):
                word = {"connect_refused": "refused (RST)", "connect_failed": "failed",
                        "timeout": "no answer (timeout)"}[reason]
                rows.append(Row(start, ORIG, dcol, f"{label_n}TCP connect to {a.get('destination')}: {word}", "tcp", True))
        elif ci in used_before:
            rows.append(Row(start, ORIG, ORIG, f"{label_n}reuses TLS connection #{ci} to {columns[dcol]} "
                                                f"(opened for call {used_before[ci]})", "note"))
        else:
            offset = start
            app = [f for f in conn.get("transcript") or [] if f.get("direction") == "sent"
                   and f.get("messages") and all(m == "Application Data" for m in f["messages"])]
            out = [m for m in messages if m.get("dir") == "out"]
            if last and app and out:
                offset = max(start, out[0]["t_ms"] - app[0]["t_ms"])
            client_col = ORIG if conn.get("client_node", origin) == origin else dcol
            server_col = dcol if client_col == ORIG else ORIG
            local, remote = conn.get("local") or ["?", "?"], conn.get("remote") or ["?", "?"]
            if conn.get("role") == "server":
                local, remote = remote, local
            rows.append(Row(offset, client_col, server_col,
                            f"{label_n}TCP connect {local[0]}:{local[1]} → {remote[0]}:{remote[1]}", "tcp"))
            for f in handshake_flights(conn):
                sent = f.get("direction") == "sent"
                if conn.get("role") == "server":
                    sent = not sent
                failed = any(m.startswith("Alert") for m in f.get("messages", []))
                rows.append(Row(offset + (f.get("t_ms") or 0.0), client_col if sent else server_col,
                                server_col if sent else client_col, flight_label(f), "tls", failed))
            if conn.get("version") and conn.get("reason") is None:
                done = max([conn.get("handshake_ms") or 0.0] + [f.get("t_ms") or 0.0 for f in handshake_flights(conn)
                                                                 if "Finished" in f.get("messages", [])])
                rows.append(Row(offset + done, client_col, client_col,
                                f"TLS up: {conn['version']} {conn.get('cipher')}"
                                + (f" {conn['group']}" if conn.get("group") else ""), "note"))
        if last:
            for m in messages:
                line = _first_line(m.get("line", ""))
                src, dst = (ORIG, dcol) if m.get("dir") == "out" else (dcol, ORIG)
                rows.append(Row(m.get("t_ms"), src, dst, line, "sip", _is_failure_status(line)))
                if m.get("dir") == "in" and " 180 " in f" {line} ":
                    rows.append(Row(m.get("t_ms"), dcol, CALLED, "rings", "phone"))
                if m.get("dir") == "in" and line.startswith("SIP/2.0 200") and "INVITE" not in line \
                        and call.get("outcome") == "answered" and not any(r.label == "answers" for r in rows):
                    rows.append(Row(m.get("t_ms"), CALLED, dcol, "answers", "phone"))
                if m.get("dir") == "out" and line.startswith("BYE"):
                    rows.append(Row(m.get("t_ms"), 0, ORIG, "hangs up", "phone"))
        end = start + (a.get("ms") or 0.0)
        if a.get("reason"):
            rows.append(Row(end, ORIG, ORIG, f"✗ {label_n}{a['reason']} at {columns[dcol]}", "note", True))
            lad.notes.append((f"{label_n or 'why: '}{a['reason']} — {a.get('detail') or ''}".strip(" —"), True))
        start = end
    if attempts:
        if call.get("outcome") == "answered":
            rows.append(Row(call.get("setup_ms"), ORIG, 0, f"call answered (setup {call.get('setup_ms')} ms)", "phone"))
        else:
            rows.append(Row(call.get("setup_ms"), ORIG, 0, f"call fails: {call.get('reason')}"
                            + (f" ({call['status']})" if call.get("status") else ""), "phone", True))
    order = {id(r): n for n, r in enumerate(rows)}
    rows.sort(key=lambda r: ((r.t if r.t is not None else float("inf")), order[id(r)]))
    return lad


def ladder_for(report: dict, call_id: int | None) -> Ladder:
    call = find_call(report, call_id)
    if call is None:
        raise LookupError(call_id)
    return build(report, call)


# --- text ----------------------------------------------------------------------------------------
def render_text(report: dict, call_id: int | None = None, markup: bool = True) -> str:
    from rich.markup import escape as rich_escape

    lad = ladder_for(report, call_id)
    width = [max(14, len(c) + 2) for c in lad.columns]
    lanes, x = [], 0
    for w in width:
        lanes.append(x + w // 2)
        x += w
    total = x

    def esc(s: str) -> str:
        return rich_escape(s) if markup else s

    def red(s: str) -> str:
        return f"[red]{s}[/red]" if markup else s

    out = [esc(lad.title), ""]
    head = [" "] * total
    for name, lane in zip(lad.columns, lanes):
        s = max(0, lane - len(name) // 2)
        head[s:s + len(name)] = list(name)
    out.append(" " * 11 + esc("".join(head).rstrip()))
    for r in lad.rows:
        cells = [" "] * (total + 1)
        for lane in lanes:
            cells[lane] = "|"
        a, b = lanes[r.src], lanes[r.dst]
        if r.arrow:
            lo, hi = min(a, b), max(a, b)
            for k in range(lo + 1, hi):
                cells[k] = "-"
            if b > a:
                cells[hi - 1] = ">"
            else:
                cells[lo + 1] = "<"
        else:
            cells[a] = "*"
        t = f"{r.t:9.1f}" if r.t is not None else "        ?"
        line = f"{t}  {esc(''.join(cells).rstrip())}  {esc(r.label)}"
        out.append(red(line) if r.failed else line)
    if lad.notes:
        out.append("")
        for sentence, failed in lad.notes:
            out.append(red(esc(sentence)) if failed else esc(sentence))
    return "\n".join(out) + "\n"


# --- SVG -----------------------------------------------------------------------------------------
CHAR_W = 6.6   # average width of an 11 px sans-serif character
FONT = "font-family='DejaVu Sans, Arial, Helvetica, sans-serif'"


def render_svg(report: dict, call_id: int | None = None) -> str:
    lad = ladder_for(report, call_id)
    n = len(lad.columns)
    # the gap between neighbouring lanes fits the longest label of an arrow between them
    need = [150.0] * (n - 1)
    for r in lad.rows:
        if r.arrow and abs(r.src - r.dst) == 1:
            k = min(r.src, r.dst)
            need[k] = max(need[k], min(len(r.label), 70) * CHAR_W + 30)
    left = 90.0
    lanes = [left + 70]
    for g in need:
        lanes.append(lanes[-1] + g)
    note_room = max([len(r.label) * CHAR_W for r in lad.rows if not r.arrow] + [0])
    width = int(max(lanes[-1] + 90, max(lanes[1:3]) + note_room + 20, 600))
    top = 80.0
    body: list[str] = []
    y = top
    for r in lad.rows:
        color = "#c62828" if r.failed else "#222"
        if r.arrow:
            span = abs(lanes[r.dst] - lanes[r.src])
            chars = max(20, int((span - 20) / CHAR_W))
            text_lines = textwrap.wrap(r.label, chars) or [""]
        else:
            text_lines = [r.label]
        y += 14 + 13 * (len(text_lines) - 1) if r.arrow else 6
        t = f"{r.t:.1f}" if r.t is not None else "?"
        body.append(f"<text x='{left:.0f}' y='{y + 4:.0f}' text-anchor='end' font-size='11' fill='#555' {FONT}>"
                    f"{escape(t)} ms</text>")
        if r.arrow:
            x1, x2 = lanes[r.src], lanes[r.dst]
            dx = -4 if x2 > x1 else 4
            marker = "arrow-red" if r.failed else "arrow"
            dash = " stroke-dasharray='5,3'" if r.kind in ("phone", "tcp") else ""
            body.append(f"<line class='arrow {r.kind}{' failed' if r.failed else ''}' x1='{x1:.0f}' y1='{y:.0f}' "
                        f"x2='{x2 + dx:.0f}' y2='{y:.0f}' stroke='{color}' stroke-width='1.4'{dash} "
                        f"marker-end='url(#{marker})'/>")
            mid = (x1 + x2) / 2
            for k, tl in enumerate(text_lines):
                ty = y - 5 - 13 * (len(text_lines) - 1 - k)
                body.append(f"<text x='{mid:.0f}' y='{ty:.0f}' text-anchor='middle' font-size='11' fill='{color}' "
                            f"{FONT}>{escape(tl)}</text>")
        else:
            x = lanes[r.src]
            body.append(f"<circle cx='{x:.0f}' cy='{y:.0f}' r='3.5' fill='{color}'/>")
            body.append(f"<text class='note' x='{x + 8:.0f}' y='{y + 4:.0f}' font-size='11' fill='{color}' "
                        f"font-style='italic' {FONT}>{escape(r.label)}</text>")
        y += 14
    bottom = y + 10
    foot: list[str] = []
    fy = bottom + 24
    chars = max(40, int((width - 40) / CHAR_W))
    for sentence, failed in lad.notes:
        color = "#c62828" if failed else "#222"
        for tl in textwrap.wrap(sentence, chars):
            foot.append(f"<text x='20' y='{fy:.0f}' font-size='11' fill='{color}' {FONT}>{escape(tl)}</text>")
            fy += 15
        fy += 4
    height = int(fy + 10)
    head: list[str] = []
    for name, x in zip(lad.columns, lanes):
        w = max(90, len(name) * 7.2 + 16)
        head.append(f"<rect x='{x - w / 2:.0f}' y='40' width='{w:.0f}' height='24' rx='4' fill='#eef3fb' "
                    f"stroke='#5577aa'/>")
        head.append(f"<text x='{x:.0f}' y='56' text-anchor='middle' font-size='12' font-weight='bold' {FONT}>"
                    f"{escape(name)}</text>")
        head.append(f"<line class='lane' x1='{x:.0f}' y1='64' x2='{x:.0f}' y2='{bottom:.0f}' stroke='#99a' "
                    f"stroke-width='1'/>")
    title_color = "#c62828" if lad.call.get("outcome") != "answered" else "#1b5e20"
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>",
        "<defs>",
        "<marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='8' markerHeight='8' "
        "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#222'/></marker>",
        "<marker id='arrow-red' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='8' markerHeight='8' "
        "orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#c62828'/></marker>",
        "</defs>",
        f"<rect x='0' y='0' width='{width}' height='{height}' fill='white'/>",
        f"<text x='20' y='24' font-size='14' font-weight='bold' fill='{title_color}' {FONT}>"
        f"{escape(lad.title)}</text>",
        f"<text x='{left:.0f}' y='56' text-anchor='end' font-size='11' fill='#555' {FONT}>t</text>",
        *head, *body, *foot,
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
