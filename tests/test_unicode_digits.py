"""``str.isdigit()`` is true for '²' and the Arabic-Indic one, which ``int()`` then rejects or reads
as 1: every parser of outside input checks ASCII first (issue 10 §3, the class).

A meta-test keeps the class fixed: a bare ``.isdigit()`` in csuhub/ or plugins/
fails unless the same expression also asks ``.isascii()``.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from csuhub_onvif import wsdiscovery as wsd
from csuhub_rtsp.rtsp import RtspClient, RtspError
from hypothesis import given, settings
from hypothesis import strategies as st
from peers.wsd_responder import STANDARD
from test_wsdiscovery import reply

from csuhub.testing import build_hub

ROOT = Path(__file__).resolve().parent.parent
UNICODE_DIGITS = ["²", "\u0661", "\u09e9", "¹²", "\u0663\u0664", "\U0001d7d7"]


def test_no_bare_isdigit_in_the_code() -> None:
    offenders = []
    for path in [*ROOT.glob("csuhub/**/*.py"), *ROOT.glob("plugins/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"\.isdigit\(\)", line) and "isascii()" not in line:
                if line.lstrip().startswith(("#", "*", '"')) or "``" in line:
                    continue  # prose about the trap, not a use of it
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "check isascii() with isdigit():\n" + "\n".join(offenders)


def _reply(version: str) -> bytes:
    return re.sub(
        rb"<d:MetadataVersion>[^<]*</d:MetadataVersion>",
        f"<d:MetadataVersion>{version}</d:MetadataVersion>".encode(),
        reply(STANDARD),
    )


@pytest.mark.parametrize("digits", UNICODE_DIGITS)
def test_a_probe_match_with_unicode_digits_is_read_not_crashed(digits: str) -> None:
    (match,) = wsd.parse_reply(_reply(digits), "10.0.0.5")
    assert match.ref == "urn:uuid:cam-1" and match.metadata_version is None
    (plain,) = wsd.parse_reply(_reply("7"), "10.0.0.5")
    assert plain.metadata_version == 7


async def _rtsp_read(head: bytes) -> Any:
    reader = asyncio.StreamReader()
    reader.feed_data(head)
    reader.feed_eof()
    return await RtspClient("rtsp://127.0.0.1/x")._read(reader)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["²", "³", "¹", "²³"]) | st.text("0123456789²³¹ ", max_size=6))
def test_an_rtsp_content_length_in_any_digits_never_crashes(length: str) -> None:
    head = f"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: {length}\r\n\r\n".encode("latin-1")
    try:
        response = asyncio.run(_rtsp_read(head))
    except RtspError:
        return  # a clean protocol error (e.g. the body the length announces is missing)
    assert response.status == 200


@pytest.mark.parametrize("key", ["²", "\u0661", "99999999999999999999999", "18446744073709551616"])
def test_requisitions_show_with_hostile_ids_is_a_clean_error(tmp_path: Path, key: str) -> None:
    data = tmp_path / "data"

    async def create() -> None:
        hub = build_hub(data)
        await hub.start()
        await hub.stop()

    asyncio.run(create())
    result = run_cli("requisitions", "show", key, "--data", str(data))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "no requisition" in (result.stderr + result.stdout)
