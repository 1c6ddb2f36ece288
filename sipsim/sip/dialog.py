"""SIP dialogs (RFC 3261 §12) as an explicit state table: early → confirmed → terminated.

A dialog holds what in-dialog requests need: Call-ID, local/remote tags and URIs, local and
remote CSeq, the remote target (the peer's Contact) and the route set (Record-Route).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .headers import parse_name_addr, parsed_name_addr
from .message import Headers, Request, Response

__all__ = ["DIALOG_TABLE", "Dialog", "DialogError"]

#: (state, event) -> (new state, actions). Events: "1xx"/"2xx"/"failure" (responses to the
#: dialog-creating INVITE, seen by either side), "target_refresh" (re-INVITE or its 2xx),
#: "bye". Actions: "update_target" (remote target := Contact), "route_set" (recompute routes).
DIALOG_TABLE: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("init", "1xx"): ("early", ("update_target", "route_set")),
    ("init", "2xx"): ("confirmed", ("update_target", "route_set")),
    ("init", "failure"): ("terminated", ()),
    ("early", "1xx"): ("early", ("update_target",)),
    ("early", "2xx"): ("confirmed", ("update_target", "route_set")),
    ("early", "failure"): ("terminated", ()),
    ("early", "bye"): ("terminated", ()),
    ("confirmed", "2xx"): ("confirmed", ()),
    ("confirmed", "target_refresh"): ("confirmed", ("update_target",)),
    ("confirmed", "bye"): ("terminated", ()),
}


class DialogError(ValueError):
    """A message cannot create or update the dialog (e.g. no Contact in a 2xx)."""


@dataclass(slots=True)
class Dialog:
    """One dialog, seen from our side (``role`` "uac" or "uas")."""

    role: str
    call_id: str
    local_tag: str
    local_party: str  #: our From (UAC) / To (UAS) value, with our tag
    remote_party: str  #: their To (UAC) / From (UAS) value, with their tag once known
    local_seq: int
    remote_seq: int | None = None
    remote_tag: str | None = None
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    state: str = "init"

    @property
    def id(self) -> tuple[str, str, str | None]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def for_uac(cls, invite: Request) -> Dialog:
        """The dialog an INVITE we send will create (state init until a response has a To tag)."""
        return cls(
            role="uac",
            call_id=invite.call_id or "",
            local_tag=invite.from_tag or "",
            local_party=invite.headers.get("From") or "",
            remote_party=invite.headers.get("To") or "",
            local_seq=invite.cseq[0],
            remote_target=invite.uri,
        )

    @classmethod
    def for_uas(cls, invite: Request, local_tag: str) -> Dialog:
        """The dialog an INVITE we received creates; our responses carry ``local_tag``."""
        d = cls(
            role="uas",
            call_id=invite.call_id or "",
            local_tag=local_tag,
            local_party=f"{invite.headers.get('To')};tag={local_tag}",
            remote_party=invite.headers.get("From") or "",
            local_seq=0,
            remote_seq=invite.cseq[0],
            remote_tag=invite.from_tag,
        )
        d._set_target(invite)
        d.route_set = invite.headers.get_all("Record-Route")
        return d

    def on(self, event: str, message: Request | Response) -> str:
        """Apply an event; returns the new state. Unknown pairs leave the dialog unchanged."""
        entry = DIALOG_TABLE.get((self.state, event))
        if entry is None:
            return self.state
        new_state, actions = entry
        if self.role == "uac" and isinstance(message, Response) and self.remote_tag is None:
            self.remote_tag = message.to_tag
            self.remote_party = message.headers.get("To") or self.remote_party
        ours = self.role == "uas" and isinstance(message, Response)  # our own 1xx/2xx
        for action in actions:
            if action == "update_target" and not ours:
                self._set_target(message)
            elif action == "route_set" and self.role == "uac":
                self.route_set = list(reversed(message.headers.get_all("Record-Route")))
        self.state = new_state
        return new_state

    def matches(self, request: Request) -> bool:
        """Is this in-dialog request (To tag = ours, From tag = theirs) for this dialog?"""
        return (
            request.call_id == self.call_id
            and request.to_tag == self.local_tag
            and request.from_tag == self.remote_tag
        )

    def _set_target(self, message: Request | Response) -> None:
        contact = message.headers.get("Contact")
        if contact:
            try:
                self.remote_target = parsed_name_addr(contact).uri  # a peer's Contact repeats call after call
            except ValueError as e:
                raise DialogError(f"bad Contact {contact!r}: {e}") from None

    def next_cseq(self) -> int:
        self.local_seq += 1
        return self.local_seq

    def request(self, method: str, via: str, *, cseq: int | None = None, body: bytes = b"") -> Request:
        """Build an in-dialog request (RFC 3261 §12.2.1.1), loose or strict routing."""
        fields = [("Via", via)]
        uri = self.remote_target
        routes = list(self.route_set)
        if routes:
            try:
                first = parse_name_addr(routes[0]).uri
            except ValueError:
                first = ""
            if first and ";lr" not in first:  # strict router: it goes in the Request-URI
                uri = first
                routes = routes[1:] + [f"<{self.remote_target}>"]
        keys = ["via"]
        for r in routes:
            fields.append(("Route", r))
            keys.append("route")
        fields.append(("From", self.local_party))
        fields.append(("To", self.remote_party))
        fields.append(("Call-ID", self.call_id))
        fields.append(("CSeq", f"{self.next_cseq() if cseq is None else cseq} {method}"))
        fields.append(("Max-Forwards", "70"))
        keys += ("from", "to", "call-id", "cseq", "max-forwards")  # the names above, normalised
        return Request(method, uri, Headers._make(keys, fields), body)
