"""The SIP call line: options, sockets, agent, and the reports to the hub's desk.

Reports go to ``hub.calls`` as tasks, so that no SIP response waits for the
store: the 100/180 leave as soon as the INVITE is read. A call's reports are
chained (each waits for the one before it), so an ABANDONED never overtakes
the RINGING that opens the incident.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
from typing import Any

import voluptuous as vol

from csuhub.api import CallReport

from .agent import Agent, AgentOptions
from .digest import DigestAuth
from .notes import RATE_WINDOW, OnceLog
from .transport import PeerFilter, SipTransports

_LOGGER = logging.getLogger(__name__)

#: how long stop() waits for reports still being written
DRAIN_TIMEOUT = 5.0


def _address(value: Any) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise vol.Invalid("expected an IP address such as 127.0.0.1 or 0.0.0.0") from None


def _network(value: Any) -> str:
    try:
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError(value)
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise vol.Invalid("expected an IP address or a CIDR network such as 10.1.2.0/24") from None


def _realm(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isprintable():
        raise vol.Invalid("expected a realm of 1 to 64 printable characters")
    return value


def _number(low: float, high: float) -> Any:
    return vol.All(vol.Any(int, float), vol.Range(min=low, max=high), vol.Coerce(float))


def _finish(options: dict[str, Any]) -> dict[str, Any]:
    if "transport" in options and "transports" in options:
        raise vol.Invalid("give transports (a list) or transport (one), not both")
    single = options.pop("transport", None)
    options.setdefault("transports", [single] if single else ["udp", "tcp"])
    options["transports"] = list(dict.fromkeys(options["transports"]))
    if options["require_auth"] and not options.get("password"):
        raise vol.Invalid("require_auth needs a password (use !secret)", path=["password"])
    return options


SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional("listen_host", default="127.0.0.1"): _address,
            vol.Optional("listen_port", default=5060): vol.All(int, vol.Range(min=0, max=65535)),
            vol.Optional("transports"): vol.All([vol.In(["udp", "tcp"])], vol.Length(min=1, max=2)),
            # the blueprint's single transport
            vol.Optional("transport"): vol.In(["udp", "tcp"]),
            vol.Optional("allowed_peers", default=["127.0.0.1/32", "::1/128"]): vol.All(
                [_network], vol.Length(min=1, max=64)
            ),
            vol.Optional("answer", default="busy"): vol.In(["busy", "decline", "observe"]),
            vol.Optional("ring_for", default=1.0): _number(0, 120),
            vol.Optional("open_incident", default=True): bool,
            vol.Optional("require_auth", default=False): bool,
            vol.Optional("realm", default="csuhub"): _realm,
            vol.Optional("username"): vol.All(str, vol.Length(min=1, max=64)),
            vol.Optional("password"): vol.All(str, vol.Length(max=256)),
            vol.Optional("max_transactions", default=4096): vol.All(
                int, vol.Range(min=16, max=65536)
            ),
        }
    ),
    _finish,
)


class SipLine:
    """One ``call_lines:`` entry of type ``sip`` (a ``CallLine``)."""

    def __init__(self, hub: Any, line_id: str, options: dict[str, Any]) -> None:
        self._hub = hub
        self.line_id = line_id
        self.options = options
        #: the bound port, once started (useful with listen_port 0)
        self.port: int | None = None
        self.once = OnceLog(_LOGGER)
        self.agent: Agent | None = None
        self._transports: SipTransports | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._flusher: asyncio.TimerHandle | None = None
        #: reports the desk accepted, and those it failed (tests and benches read them)
        self.reported = 0
        self.failed = 0

    async def start(self) -> None:
        o = self.options
        auth = None
        if o["require_auth"]:
            auth = DigestAuth(o["realm"], o["password"], o.get("username"))
        loop = asyncio.get_running_loop()
        self.agent = Agent(
            AgentOptions(
                line_id=self.line_id,
                answer=o["answer"],
                ring_for=o["ring_for"],
                open_incident=o["open_incident"],
                auth=auth,
                capacity=o["max_transactions"],
            ),
            self._report,
            loop,
            self.once,
        )
        networks = [ipaddress.ip_network(n) for n in o["allowed_peers"]]
        self._transports = SipTransports(
            o["listen_host"],
            o["listen_port"],
            o["transports"],
            PeerFilter(networks, self.once),
            self.agent.receive,
            self.agent.refuse,
            self.once,
        )
        self.port = await self._transports.start()
        self._flush_notes()
        _LOGGER.info(
            "SIP line %s listening on %s port %d (%s), answering %s",
            self.line_id,
            o["listen_host"],
            self.port,
            "+".join(o["transports"]),
            o["answer"],
        )

    def _flush_notes(self) -> None:
        """Each rate window, log what the refusal log's cap held back, even
        when no refusal comes after a flood to trigger it."""
        self.once.note_window()
        self._flusher = asyncio.get_running_loop().call_later(RATE_WINDOW, self._flush_notes)

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self.once.flush()
        if self._transports is not None:
            await self._transports.stop()
        if self.agent is not None:
            self.agent.close()
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=DRAIN_TIMEOUT)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)

    def _report(self, report: CallReport) -> None:
        previous = self._chains.get(report.call_id)
        task = asyncio.get_running_loop().create_task(self._deliver(report, previous))
        self._chains[report.call_id] = task
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._delivered, report.call_id))

    async def _deliver(self, report: CallReport, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self._hub.calls.report(report)
        except Exception as error:
            self.failed += 1
            self.once.note(
                "the desk refused a call report",
                self.line_id,
                repr(error)[:200],
                level=logging.ERROR,
            )
            _LOGGER.debug("call report failed", exc_info=True)
        else:
            self.reported += 1

    def _delivered(self, call_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._chains.get(call_id) is task:
            del self._chains[call_id]
