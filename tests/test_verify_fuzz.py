"""The verifier against mutated real packages: never raises, never calls a change intact.

One real package (ffmpeg, a real hub's key) is built per module; hypothesis
mutates its bytes in memory: byte flips anywhere, truncation, insertion,
members removed, duplicated or added, random manifests. The properties:

- the unmodified package is intact (against the hub's key);
- a single change of bytes is never intact, and its status is tampered,
  unreadable or untrusted (exit 1, 2 or 3), with problems that name something;
- whatever the mutation, an *intact* verdict means every member's bytes are
  the original's, and the verifier never reports an internal error;
- the CLI prints valid JSON with ``--json`` and exits with the verdict's code.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_verify import Built, build_package, members, repack

from csuhub.cli import main
from csuhub.recording.trust import Anchor
from csuhub.recording.verify import Status, Verification, verify_package

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, ffmpeg_bin: str) -> Built:
    return build_package(tmp_path_factory.mktemp("fuzz"))


def anchors(built: Built) -> list[Anchor]:
    return [Anchor(built.fingerprint, "test")]


def contents(raw: bytes) -> dict[str, bytes] | None:
    try:
        return dict(members(raw))
    except Exception:
        return None


def check(built: Built, mutated: bytes, *, signed_by_hub: bool = False) -> Verification:
    """``signed_by_hub``: the test re-signed the manifest with the hub's own key,
    which is the hub vouching for it; only then may changed contents be intact."""
    result = verify_package(mutated, anchors(built))
    assert result.exit_code in (0, 1, 2, 3)
    assert not any("internal error" in p.message for p in result.problems), result.problems
    if result.status is Status.INTACT:
        assert signed_by_hub or contents(mutated) == contents(built.raw)
        assert result.problems == []
    else:
        assert result.problems or result.status is Status.UNTRUSTED
        assert all(p.member and p.message for p in result.problems)
    json.dumps(result.as_dict(), ensure_ascii=False).encode("utf-8")
    return result


def test_the_unmodified_package_is_intact(built: Built) -> None:
    result = verify_package(built.raw, anchors(built))
    assert result.status is Status.INTACT, result.problems
    assert verify_package(built.package, anchors(built)).ok


@FUZZ
@given(data=st.data())
def test_any_single_change_is_never_intact(built: Built, data: st.DataObject) -> None:
    raw = built.raw
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if kind == "flip":
        mutated = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    elif kind == "truncate":
        mutated = raw[:at]
    elif kind == "insert":
        mutated = raw[:at] + data.draw(st.binary(min_size=1, max_size=64)) + raw[at:]
    else:
        mutated = raw[:at] + raw[at + data.draw(st.integers(1, 64)) :]
    assert mutated != raw
    result = check(built, mutated)
    assert result.status is not Status.INTACT, (kind, at)


@FUZZ
@given(data=st.data())
def test_many_changes_never_crash(built: Built, data: st.DataObject) -> None:
    mutated = bytearray(built.raw)
    for _ in range(data.draw(st.integers(2, 12))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = data.draw(st.integers(0, 255))
    check(built, bytes(mutated))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
NAMES = st.sampled_from(
    ["video.mp4", "manifest.json", "manifest.sig", "public_key.pem", "LISEZMOI.txt"]
) | st.text(min_size=1, max_size=20).filter(
    # names csuhub's writer refuses to write are tested with zipfile below
    lambda n: not ("\x00" in n or "\\" in n or n.startswith("/") or ".." in n.split("/"))
)


@FUZZ
@given(data=st.data())
def test_member_level_changes_are_named(built: Built, data: st.DataObject) -> None:
    items = members(built.raw)
    kind = data.draw(st.sampled_from(["remove", "duplicate", "add", "manifest", "resign"]))
    if kind == "remove":
        index = data.draw(st.integers(0, len(items) - 1))
        items = items[:index] + items[index + 1 :]
    elif kind == "duplicate":
        name, payload = data.draw(st.sampled_from(items))
        items.insert(data.draw(st.integers(0, len(items))), (name, payload))
    elif kind == "add":
        items.append((data.draw(NAMES), data.draw(st.binary(max_size=64))))
    else:
        manifest: Any = data.draw(JSON)
        if kind == "resign" and isinstance(manifest, dict):
            manifest = {**json.loads(dict(items)["manifest.json"]), **manifest}
        text = json.dumps(manifest).encode()
        signature = base64.b64encode(built.key.sign(text)) if kind == "resign" else None
        items = [
            (n, text if n == "manifest.json" else signature or d if n == "manifest.sig" else d)
            for n, d in items
        ]
    mutated = repack(items)
    result = check(built, mutated, signed_by_hub=kind == "resign")
    if mutated != built.raw and contents(mutated) != contents(built.raw):
        assert result.status is not Status.INTACT or kind == "resign"
    if kind in ("remove", "duplicate", "add") and mutated != built.raw:
        assert result.status is Status.TAMPERED
        assert result.problems


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_the_cli_always_prints_json_and_the_verdicts_code(
    built: Built, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    raw = bytearray(built.raw)
    for _ in range(data.draw(st.integers(0, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(raw)))
    path = tmp_path_factory.mktemp("cli") / "pkg.zip"
    path.write_bytes(bytes(raw[:cut]))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["verify", str(path), "--fingerprint", built.fingerprint, "--json"])
    document = json.loads(out.getvalue())
    assert code == document["exit_code"] == verify_package(path, anchors(built)).exit_code
    assert (code == 0) == (bytes(raw[:cut]) == built.raw)


def test_a_package_with_prefix_bytes_or_a_comment_is_not_intact(built: Built) -> None:
    """Places zipfile tolerates, where something could hide."""
    assert check(built, b"MZ" + built.raw).status is not Status.INTACT
    buffer = io.BytesIO(built.raw)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = b"hidden"
    assert check(built, buffer.getvalue()).status is not Status.INTACT


@pytest.mark.parametrize("name", ["../escape", "/abs", "a\\b", "nul\x00x", "\x1b[2J", ""])
def test_hostile_member_names_are_named_printably(built: Built, name: str) -> None:
    buffer = io.BytesIO(built.raw)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(zipfile.ZipInfo(name or "x"), b"payload")
    result = check(built, buffer.getvalue())
    assert result.status is Status.TAMPERED
    assert all(p.member.isprintable() and p.message.isprintable() for p in result.problems)


def test_a_compressed_member_is_not_read(built: Built, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members(built.raw):
            archive.writestr(name, payload)
    result = check(built, buffer.getvalue())
    assert result.status is Status.TAMPERED
    assert any("compressed" in p.message for p in result.problems)
