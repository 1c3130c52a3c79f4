"""The monitoring user agent: what each SIP request means for the police desk.

It sits above the transaction layer (RFC 3261's "transaction user") and below
the line, which owns the sockets and the hub. It never answers a call with
media: an INVITE gets 100 Trying and 180 Ringing at once, the call is reported
to the desk as ringing, and then

* ``answer: busy`` (the default) or ``decline``: 486 Busy Here or 603 Decline
  after ``ring_for`` seconds, which ends the monitoring leg and leaves the
  desk's own leg ringing; what happens to the call afterwards is not seen;
* ``answer: observe``: nothing more, until the PBX cancels the leg (487 to the
  INVITE): ``Reason: SIP;cause=200`` means another leg answered (ANSWERED),
  any other CANCEL that the caller hung up first (ABANDONED). A leg still
  ringing after ``linger`` (10 minutes) without a CANCEL is ended with 480
  Temporarily Unavailable and reported ENDED (the line stopped watching).

The agent never sends a 2xx to an INVITE, so it never has a dialog: a BYE is
always 481 Call/Transaction Does Not Exist (§15.1.2) and reports nothing.
Every new INVITE is reported, even one answered with a stateless 503 because
the transaction table is full, 400 for its location or 420 for a ``Require``
it cannot meet: a citizen's call is an incident first.

Note that a 6xx from one branch of a proxy's fork cancels every other branch
(RFC 3261 §16.7): ``decline`` is only for a PBX that does not fork through a
proxy, or the desk's phone stops ringing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from csuhub.api import CallReport, CallState, Location

from .digest import DigestAuth
from .message import (
    SipError,
    SipRequest,
    build_response,
    name_addr_uri,
    parse_request,
    split_commas,
    uri_user,
)
from .notes import OnceLog
from .pidf import LocationError, location_of
from .transactions import Peer, ServerTransaction, TransactionTable

_LOGGER = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
#: methods this agent knows but does not serve: 405, the rest 501 (§21.4.6, §21.5.2)
KNOWN = {
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
    "INFO",
    "UPDATE",
    "PRACK",
    "REFER",
    "PUBLISH",
}
FINAL = {"busy": 486, "decline": 603}
#: option tags this agent supports in a Require header: none (RFC 3261 §8.2.2.3)
SUPPORTED: frozenset[str] = frozenset()
_OPTION_TAG = re.compile(r"[A-Za-z0-9.!%*_+`'~-]{1,64}")
_CALLER = re.compile(r"[0-9A-Za-z+*#()._ -]{1,64}")
MAX_CALLS = 4096


def caller_of(request: SipRequest) -> str | None:
    """The caller's number: P-Asserted-Identity (its tel: URI first), else From;
    None when withheld ("anonymous") or unreadable. The hub is inside the
    PBX's trust domain, so a ``Privacy: id`` does not hide the asserted
    identity from it (the hub masks numbers for operators itself)."""
    uris: list[str] = []
    for line in request.headers.get("p-asserted-identity", ()):
        uris += [u for u in (name_addr_uri(v) for v in split_commas(line)) if u]
    uris.sort(key=lambda u: not u.lower().startswith("tel:"))
    if not uris:
        uri = name_addr_uri(request.headers["from"][0])
        uris = [uri] if uri else []
    for uri in uris:
        if uri.lower().endswith("@anonymous.invalid"):
            return None
        user = uri_user(uri)
        if user is None:
            continue
        if user.strip().lower() in ("anonymous", "unknown", "restricted"):
            return None
        return user.strip() if _CALLER.fullmatch(user.strip()) else None
    return None


def answered_elsewhere(request: SipRequest) -> bool:
    """A CANCEL whose Reason is ``SIP;cause=200`` (RFC 3326): another leg answered."""
    for line in request.headers.get("reason", ()):
        for value in split_commas(line):
            protocol, _, params = value.partition(";")
            if protocol.strip().upper() == "SIP" and re.search(
                r"(^|;)\s*cause\s*=\s*200\b", params
            ):
                return True
    return False


@dataclass(frozen=True, slots=True)
class AgentOptions:
    line_id: str
    answer: str = "busy"
    ring_for: float = 1.0
    open_incident: bool = True
    auth: DigestAuth | None = None
    capacity: int = 4096
    linger: float = 600.0


@dataclass(slots=True)
class _Call:
    caller: str | None
    location: Location | None
    arrived: float
    state: CallState = CallState.RINGING


class Agent:
    def __init__(
        self,
        options: AgentOptions,
        report: Callable[[CallReport], None],
        loop: asyncio.AbstractEventLoop,
        once: OnceLog,
    ) -> None:
        self.options = options
        self._report = report
        self.once = once
        self.table = TransactionTable(
            loop,
            capacity=options.capacity,
            linger=options.linger,
            on_timeout=self._no_ack,
            on_linger=self._lingered,
        )
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        #: requests absorbed as retransmissions of a live transaction
        self.retransmissions = 0

    def receive(self, data: bytes, peer: Peer, arrived: float) -> bool:
        """One message from an allowed peer. False when it was refused (a
        stream's connection is then closed: its framing is in doubt)."""
        try:
            request = parse_request(data, stream=peer.reliable)
        except SipError as error:
            self.refuse(error, peer)
            return False
        self.handle(request, peer, arrived)
        return True

    def refuse(self, error: SipError, peer: Peer) -> None:
        """Answer a malformed message with its 400 when it can be routed, else drop it."""
        answered = error.routable
        self.once.note(
            f"malformed SIP message ({error.reason})",
            peer.host,
            f"answered {error.status}" if answered else "dropped",
        )
        if answered and error.status is not None:
            try:
                peer.send(build_response(error.headers, error.status, reason=_reason(error)))
            except (OSError, KeyError):
                pass

    def handle(self, request: SipRequest, peer: Peer, arrived: float) -> None:
        if request.method == "ACK":
            tx = self.table.match(request)
            if tx is not None:
                tx.acknowledged()
            return  # an ACK to nothing of ours (a 2xx we never sent) is absorbed
        tx = self.table.match(request)
        if tx is not None:
            self.retransmissions += 1
            tx.retransmitted()
            return
        tx = self.table.create(request, peer)
        if tx is None:
            self._overloaded(request, peer, arrived)
            return
        method = request.method
        if method not in ("INVITE", "CANCEL", "BYE", "OPTIONS"):
            if method in KNOWN:
                tx.respond(405, extra=(("Allow", ALLOW),))
            else:
                tx.respond(501)
            return
        if method != "CANCEL" and not self._authorised(tx, peer):
            return
        if method in ("BYE", "OPTIONS") and (unsupported := _unsupported(request)):
            tx.respond(420, extra=(("Unsupported", ", ".join(unsupported)),))
            return
        if method == "INVITE":
            self._invite(tx, arrived)
        elif method == "CANCEL":
            self._cancel(tx)
        elif method == "BYE":
            tx.respond(481)  # no 2xx was ever sent, so there is no dialog to end
        else:
            tx.respond(
                200,
                extra=(
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp, application/pidf+xml, multipart/mixed"),
                ),
            )

    def _overloaded(self, request: SipRequest, peer: Peer, arrived: float) -> None:
        """No room for a transaction: a stateless 503, but a new call is still
        reported (authenticated first when the line requires it)."""
        self.once.note("transaction table full, answering 503", peer.host)
        peer.send(build_response(request.headers, 503, extra=(("Retry-After", "5"),)))
        if request.method != "INVITE" or request.to_tag is not None:
            return
        if request.call_id in self._calls:
            return  # a retransmission, or a call already reported
        auth = self.options.auth
        if auth is not None:
            given = request.get("authorization")
            if auth.verify(given, request.method, request.uri, peer.host) != "ok":
                return
        try:
            location, text = location_of(request), ""
        except LocationError as error:
            location, text = None, f"location refused: {error}"
        self._open(request, location, arrived, text)

    def _authorised(self, tx: ServerTransaction, peer: Peer) -> bool:
        auth = self.options.auth
        if auth is None:
            return True
        request = tx.request
        given = request.get("authorization")
        verdict = auth.verify(given, request.method, request.uri, peer.host)
        if verdict == "ok":
            return True
        if given and verdict == "refused":
            self.once.note("SIP digest authentication failed", peer.host)
        elif verdict == "stale":
            self.once.note("SIP digest nonce expired or reused", peer.host, level=logging.INFO)
        tx.respond(401, extra=auth.challenge(peer.host, stale=verdict == "stale"))
        return False

    def _invite(self, tx: ServerTransaction, arrived: float) -> None:
        request = tx.request
        if request.to_tag is not None:
            tx.respond(481)  # a re-INVITE: this agent never establishes a dialog
            return
        tx.respond(100)
        call_id = request.call_id
        bad: LocationError | None = None
        try:
            location = location_of(request)
        except LocationError as error:
            location, bad = None, error
            self.once.note("bad location information", tx.peer.host, f"{error}; answered 400")
        if call_id not in self._calls:
            self._open(request, location, arrived, f"location refused: {bad}" if bad else "")
        if bad is not None:
            tx.respond(400, reason="Bad Location Information")
            return
        # an extension the PBX requires (§8.2.2.3): 420, the call reported all the same
        if unsupported := _unsupported(request):
            tx.respond(420, extra=(("Unsupported", ", ".join(unsupported)),))
            return
        tx.respond(180)
        code = FINAL.get(self.options.answer)
        if code is not None:
            tx.schedule("final", self.options.ring_for, lambda: tx.respond(code))

    def _open(
        self, request: SipRequest, location: Location | None, arrived: float, text: str
    ) -> None:
        call = _Call(caller_of(request), location, arrived)
        self._calls[request.call_id] = call
        while len(self._calls) > MAX_CALLS:
            self._calls.popitem(last=False)
        self._send_report(request.call_id, call, text)

    def _cancel(self, tx: ServerTransaction) -> None:
        invite = self.table.match(tx.request, "INVITE")
        if invite is None:
            tx.respond(481)
            return
        tx.to_tag = invite.to_tag  # §9.2: the same To tag as the INVITE's responses
        tx.respond(200)
        if invite.final_sent:
            return  # too late: the INVITE already has its final response
        invite.cancel_timer("final")
        invite.respond(487)
        state = CallState.ANSWERED if answered_elsewhere(tx.request) else CallState.ABANDONED
        self._update(tx.request.call_id, state)

    def _update(self, call_id: str, state: CallState, text: str = "") -> None:
        call = self._calls.get(call_id)
        if call is None or call.state == state:
            return
        call.state = state
        self._send_report(call_id, call, text)

    def _lingered(self, tx: ServerTransaction) -> None:
        """An INVITE still ringing after ``linger`` (observe mode, a PBX that
        lost the call): end the leg with 480 rather than silently, and say so."""
        if not tx.invite or tx.final_sent:
            return
        tx.respond(480)
        seconds = f"{self.table.linger:g} s"
        self.once.note(
            "a monitoring leg rang with no CANCEL, ended with 480",
            tx.peer.host,
            f"after {seconds}",
            level=logging.INFO,
        )
        self._update(
            tx.request.call_id,
            CallState.ENDED,
            f"no CANCEL after {seconds}: the line stopped watching the call",
        )

    def _send_report(self, call_id: str, call: _Call, text: str = "") -> None:
        if not self.options.open_incident:
            return
        try:
            report = CallReport(
                line=self.options.line_id,
                call_id=call_id,
                state=call.state,
                caller=call.caller,
                location=call.location,
                received_at=call.arrived,
                text=text[:200],
            )
        except (TypeError, ValueError) as error:
            self.once.note("call not reported", call_id[:64], str(error), level=logging.ERROR)
            return
        self._report(report)

    def _no_ack(self, tx: ServerTransaction) -> None:
        if tx.invite:
            self.once.note(
                "no ACK for the final response (Timer H)", tx.peer.host, level=logging.INFO
            )

    def close(self) -> None:
        self.table.close()


def _unsupported(request: SipRequest) -> list[str]:
    """The Require option tags this agent does not support (answered 420)."""
    tags: list[str] = []
    for line in request.headers.get("require", ()):
        for tag in split_commas(line):
            if tag.lower() not in SUPPORTED and tag not in tags:
                tags.append(tag if _OPTION_TAG.fullmatch(tag) else "unknown")
    return tags[:16]


def _reason(error: SipError) -> str:
    return "Bad Request - " + error.reason if error.status == 400 else error.reason
