"""Server transactions (RFC 3261 §17.2): what makes a retransmission a retransmission.

Over UDP a PBX retransmits its INVITE until it hears a response, and a lost
final response is retransmitted by us until the ACK comes. Without this layer
every retransmitted INVITE would be a new call; with it, a request that
matches a live transaction (§17.2.3: the top Via's branch and sent-by and the
method, ACK matching its INVITE) only gets the last response again.

INVITE server transaction (§17.2.1)::

    proceeding --final--> completed --ACK--> confirmed --Timer I--> gone
                              |--Timer G: resend final (UDP only), T1 doubling to T2
                              '--Timer H (64*T1, no ACK)--> gone

Non-INVITE (§17.2.2): the final response is resent to each retransmission
until Timer J (64*T1 over UDP, at once over TCP) ends the transaction.

Memory stays bounded: every transaction ends on a timer, an INVITE still
ringing after ``linger`` seconds is handed to ``on_linger`` (the agent ends it
with a final response; the PBX's own timers gave up long before), and the
table holds at most ``capacity`` transactions: beyond that a new request gets
a stateless 503 (RFC 3261 §21.5.4) and nothing is kept. So that keep-alives
or a flood of OPTIONS cannot crowd out calls, non-INVITE transactions may use
only half of the table (a CANCEL of a live INVITE excepted: there is at most
one per INVITE), one source address at most half of it, and one source's
non-INVITE transactions an eighth of it.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .message import SipRequest, build_response

T1 = 0.5
T2 = 4.0
T4 = 5.0
MAGIC = "z9hG4bK"

Key = tuple[str, ...]


@dataclass(slots=True)
class Peer:
    """Where a request came from and how to answer it."""

    host: str
    port: int
    #: TCP: no retransmissions by either side
    reliable: bool
    send: Callable[[bytes], None]


def transaction_key(request: SipRequest, method: str | None = None) -> Key:
    """§17.2.3 matching; ``method`` overrides (ACK and CANCEL look up their INVITE)."""
    method = method or ("INVITE" if request.method == "ACK" else request.method)
    via = request.via
    branch = via.branch or ""
    if branch.startswith(MAGIC):
        return (branch, via.sent_by.lower(), method)
    # RFC 2543 peers: no unique branch, so the dialog and sequence identify it
    return (
        "2543",
        request.call_id,
        str(request.cseq[0]),
        request.from_tag or "",
        via.sent_by.lower(),
        branch,
        method,
    )


class ServerTransaction:
    __slots__ = (
        "_g_interval",
        "_table",
        "_timers",
        "key",
        "last",
        "peer",
        "request",
        "state",
        "to_tag",
        "via_received",
    )

    def __init__(self, table: TransactionTable, key: Key, request: SipRequest, peer: Peer) -> None:
        self._table = table
        self.key = key
        self.request = request
        self.peer = peer
        self.state = "proceeding" if request.method == "INVITE" else "trying"
        self.to_tag = secrets.token_hex(6)
        self.last: bytes | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._g_interval = T1
        via = request.via
        sent_by = via.sent_by
        if sent_by.startswith("["):
            host = sent_by[1 : sent_by.find("]")]
        else:
            host = sent_by.rsplit(":", 1)[0] if sent_by.count(":") == 1 else sent_by
        received = peer.host if host != peer.host else None
        rport = peer.port if "rport" in via.params else None
        self.via_received = (received, rport)

    @property
    def invite(self) -> bool:
        return self.request.method == "INVITE"

    @property
    def final_sent(self) -> bool:
        return self.state in ("completed", "confirmed", "terminated")

    def respond(
        self,
        status: int,
        *,
        extra: tuple[tuple[str, str], ...] = (),
        reason: str | None = None,
    ) -> bool:
        """Send a response in this transaction; False if a final one was
        already sent (the transaction answers once)."""
        if self.final_sent:
            return False
        received, rport = self.via_received
        data = build_response(
            self.request.headers,
            status,
            to_tag=self.to_tag,
            received=received,
            rport=rport,
            extra=extra,
            reason=reason,
        )
        self.last = data
        self._send(data)
        if status < 200:
            self.state = "proceeding"
            return True
        self.state = "completed"
        self.cancel_timer("linger")
        if self.invite:
            if not self.peer.reliable:
                self.schedule("G", T1, self._timer_g)
            self.schedule("H", 64 * T1, self._timeout)
        else:
            self.schedule("J", 0 if self.peer.reliable else 64 * T1, self.terminate)
        return True

    def retransmitted(self) -> None:
        """The request came again: the last response goes again (§17.2.1/2)."""
        if self.last is not None and self.state in ("proceeding", "completed", "trying"):
            self._send(self.last)

    def acknowledged(self) -> None:
        """The ACK of the final response: stop resending it; Timer I absorbs
        the ACK's own retransmissions before the transaction goes."""
        if self.invite and self.state == "completed":
            self.state = "confirmed"
            self.cancel_timer("G")
            self.cancel_timer("H")
            self.schedule("I", 0 if self.peer.reliable else T4, self.terminate)

    def terminate(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.state = "terminated"
        self._table.forget(self)

    def _send(self, data: bytes) -> None:
        try:
            self.peer.send(data)
        except OSError:
            # §17.2.4: a transport error ends the transaction
            self.terminate()

    def schedule(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self.cancel_timer(name)
        self._timers[name] = self._table.loop.call_later(delay, callback)

    def cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _timer_g(self) -> None:
        if self.state != "completed" or self.last is None:
            return
        self._send(self.last)
        self._g_interval = min(2 * self._g_interval, T2)
        self.schedule("G", self._g_interval, self._timer_g)

    def _timeout(self) -> None:
        self._table.on_timeout(self)
        self.terminate()


class TransactionTable:
    """The live server transactions of one line, bounded."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        capacity: int = 4096,
        linger: float = 600.0,
        on_timeout: Callable[[ServerTransaction], None] | None = None,
        on_forget: Callable[[ServerTransaction], None] | None = None,
        on_linger: Callable[[ServerTransaction], None] | None = None,
    ) -> None:
        self.loop = loop
        self.capacity = capacity
        self.linger = linger
        self._live: dict[Key, ServerTransaction] = {}
        self._on_timeout = on_timeout
        self._on_forget = on_forget
        self._on_linger = on_linger
        #: live non-INVITE transactions, in all and per source; all per source
        self._non_invite = 0
        self._per_source: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def match(self, request: SipRequest, method: str | None = None) -> ServerTransaction | None:
        return self._live.get(transaction_key(request, method))

    def admits(self, request: SipRequest, peer: Peer) -> bool:
        """Whether a new transaction for ``request`` from ``peer`` fits its shares."""
        if len(self._live) >= self.capacity:
            return False
        mine = self._per_source.get(peer.host, [0, 0])
        if mine[0] >= max(1, self.capacity // 2):
            return False
        if request.method == "INVITE":
            return True
        if request.method == "CANCEL" and self.match(request, "INVITE") is not None:
            return True  # one per live INVITE: within the INVITEs' share
        return self._non_invite < self.capacity // 2 and mine[1] < max(2, self.capacity // 8)

    def create(self, request: SipRequest, peer: Peer) -> ServerTransaction | None:
        """A new transaction for ``request``, or None when it has no room."""
        if not self.admits(request, peer):
            return None
        key = transaction_key(request)
        tx = ServerTransaction(self, key, request, peer)
        self._live[key] = tx
        counts = self._per_source.setdefault(peer.host, [0, 0])
        counts[0] += 1
        if not tx.invite:
            counts[1] += 1
            self._non_invite += 1
        else:
            # an INVITE left ringing (observe mode, a PBX that never cancels)
            tx.schedule("linger", self.linger, functools.partial(self._lingered, tx))
        return tx

    def _lingered(self, tx: ServerTransaction) -> None:
        if self._on_linger is not None:
            self._on_linger(tx)
        if not tx.final_sent:
            tx.terminate()

    def forget(self, tx: ServerTransaction) -> None:
        if self._live.get(tx.key) is tx:
            del self._live[tx.key]
            counts = self._per_source[tx.peer.host]
            counts[0] -= 1
            if not tx.invite:
                counts[1] -= 1
                self._non_invite -= 1
            if counts[0] == 0:
                del self._per_source[tx.peer.host]
            if self._on_forget is not None:
                self._on_forget(tx)

    def on_timeout(self, tx: ServerTransaction) -> None:
        if self._on_timeout is not None:
            self._on_timeout(tx)

    def close(self) -> None:
        for tx in list(self._live.values()):
            tx.terminate()
