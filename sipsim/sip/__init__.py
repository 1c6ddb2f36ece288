"""SIP core, sans-IO (h11 style): bytes and timer expiries in, actions out.

Modules: ``message`` (Headers, Request, Response, serialise), ``parser`` (Limits, SipParseError
and subclasses, MessageReader, parse_message), ``uri`` and ``headers`` (URI, name-addr, Via and
parameter grammar), ``timers`` (TimerConfig), ``events`` (actions), ``transaction`` and ``dialog``
(explicit state tables), ``sdp`` (one audio stream offer/answer) and ``endpoint`` (the UA).

Nothing here does I/O or imports trio/socket/OpenSSL: time is a float ``now`` passed in, and
timers are StartTimer/CancelTimer values the runtime schedules. Reliable transport only.
"""
