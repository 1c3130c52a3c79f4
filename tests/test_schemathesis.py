"""schemathesis against a live hub, through a logged-in browser session.

The hub serves on 127.0.0.1 from its own thread (a simulated camera, SQLite, a
few minutes of small indexed footage); the test logs in as an admin person and
sends the session cookie, with its CSRF token on unsafe methods. Every
operation of the hub's own /api/openapi.json is fuzzed with bounded examples
(positive and negative data) and each answer is checked: no server error, a
documented status, a documented content type, a body matching its schema.

Left out: logging out and changing the password, which would end the session
the run works through (tests/test_login.py covers them).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from csuhub.security.accounts import Accounts
from csuhub.security.permissions import system_principal
from csuhub.security.sessions import COOKIE, CSRF_HEADER
from csuhub.testing import index_footage, make_hub

T0 = time.time() - 7200
PASSWORD = "a long enough password for the fuzzing admin"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: what would end the session the run goes through
SKIPPED = {("POST", "/api/auth/logout"), ("POST", "/api/auth/password")}
KNOWN_QUERY = {
    "from": str(round(T0)),
    "to": str(round(T0) + 30),
    "t": str(round(T0) + 5),
    "reason": "schemathesis run",
}
SIM = {"pattern": "smptebars", "width": 160, "height": 90, "fps": 5, "clip_seconds": 2}


class LiveHub:
    """A started hub served from a thread's event loop (schemathesis is synchronous)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.url = ""
        #: path parameters naming objects that exist (the third pass reaches them)
        self.known: dict[str, list[str]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.done: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="schemathesis-hub", daemon=True)

    def __enter__(self) -> LiveHub:
        self.thread.start()
        if not self.ready.wait(90) or self.error is not None:
            raise RuntimeError(f"the hub did not start: {self.error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None and self.done is not None
        self.loop.call_soon_threadsafe(self.done.set)
        self.thread.join(60)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as err:
            self.error = err
            self.ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.done = asyncio.Event()
        config = {
            # no authorisation: the camera is online, not recorded
            "cameras": [{"id": "cam-sim", "driver": "simcam", "options": SIM}],
        }
        async with make_hub(self.data_dir, config, web=True, sweeping=False) as hub:
            await Accounts(hub.store).add(
                system_principal("cli"), "fuzz", roles=["admin"], scope=["*"], password=PASSWORD
            )
            # a little footage to find: 10 one-minute segments of small files
            footage = await index_footage(hub, "cam-a", T0, 10 / 60, size=2048)
            held = await hub.requisitions.create(
                {
                    "reference": "PV-2026-1",
                    "service": "BSU",
                    "officer": "OPJ Martin",
                    "legal_frame": "flagrant_delit",
                    "cameras": ["cam-a"],
                    "start": T0,
                    "end": T0 + 120,
                    "reason": "rixe",
                },
                "fuzz",
            )
            self.known = {
                "camera_id": ["cam-a", "cam-sim"],
                "segment_id": [str(footage[0].id)],
                "req_id": [str(held["id"])],
                "name": ["receipt.html"],
            }
            assert hub.web is not None and hub.web.url is not None
            self.url = hub.web.url
            self.ready.set()
            await self.done.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveHub, dict[str, str]]]:
    with LiveHub(tmp_path_factory.mktemp("schemathesis")) as hub:
        login = requests.post(
            f"{hub.url}/api/auth/login", json={"user": "fuzz", "password": PASSWORD}, timeout=30
        )
        assert login.status_code == 200, login.text
        headers = {
            "Cookie": f"{COOKIE}={login.cookies[COOKIE]}",
            CSRF_HEADER: login.json()["csrf_token"],
        }
        yield hub, headers


def _document(hub: LiveHub, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(f"{hub.url}/api/openapi.json", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        document: dict[str, Any] = json.load(answer)
    return document


def test_the_api_conforms_to_its_document(live: tuple[LiveHub, dict[str, str]]) -> None:
    hub, headers = live
    schema = schemathesis.openapi.from_dict(_document(hub, headers))
    schema.validate()
    session = requests.Session()
    started = time.monotonic()
    tested: list[str] = []
    statuses: dict[str, set[int]] = {}
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=_workflow_order)
    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        name = f"{operation.method.upper()} {operation.path}"
        for mode, examples in ((GenerationMode.POSITIVE, 20), (GenerationMode.NEGATIVE, 8)):
            seen = _fuzz(operation, mode, examples, hub.url, headers, session)
            statuses.setdefault(name, set()).update(seen)
        for known in _known(operation.path, hub.known):  # objects that exist
            seen = _fuzz(operation, GenerationMode.POSITIVE, 8, hub.url, headers, session, known)
            statuses[name].update(seen)
            query = {p.name: KNOWN_QUERY[p.name] for p in operation.query if p.name in KNOWN_QUERY}
            if query:  # and times where there is footage, with a reason
                seen = _fuzz(
                    operation, GenerationMode.POSITIVE, 3, hub.url, headers, session, known, query
                )
                statuses[name].update(seen)
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert len(tested) >= 30, tested
    # the run reached the handlers, not only the refusals in front of them
    succeeded = sorted(op for op, seen in statuses.items() if any(200 <= s < 300 for s in seen))
    assert len(succeeded) >= 15, statuses
    assert time.monotonic() - started < 150


#: a requisition's steps in the order its workflow takes them (close last)
STEPS = ("/export", "/deliver", "/close")


def _workflow_order(operation: Any) -> tuple[int, str]:
    step = next((i for i, s in enumerate(STEPS) if operation.path.endswith(s)), -1)
    return step, operation.path


def _known(path: str, known: dict[str, list[str]]) -> list[dict[str, str]]:
    """Each combination of existing objects for the path's parameters (none when
    one of them names nothing the hub seeded)."""
    names = re.findall(r"\{(\w+)\}", path)
    if not names or any(n not in known for n in names):
        return []
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(known[n] for n in names))
    ]


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    base_url: str,
    headers: dict[str, str],
    session: requests.Session,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> set[int]:
    seen: set[int] = set()

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same examples in CI as here
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(
            generation_mode=mode, path_parameters=path_parameters, query=query
        )
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(
            base_url=base_url, session=session, headers=headers, checks=CHECKS, timeout=30
        )
        seen.add(response.status_code)

    try:
        run()
    except Unsatisfiable:
        # an operation with nothing to get wrong (no parameter, no body) has no negative case
        if mode is not GenerationMode.NEGATIVE:
            raise
    return seen
