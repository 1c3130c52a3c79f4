"""Property-based: whatever YAML an admin (or an attacker) writes, `check`
answers with a verdict, never with a traceback.

The verdict has a fixed shape: on stderr, one ``file:line:col: message`` line
per issue and a summary; with ``--json``, one JSON document whose issues all
carry a position. Inputs are structured documents, arbitrary text, arbitrary
bytes (not UTF-8, NUL, deep nesting) and real site files mutated byte by byte.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csuhub.cli import main

KEYS = [
    "hub",
    "name",
    "timezone",
    "language",
    "web",
    "port",
    "host",
    "jurisdiction",
    "districts",
    "cameras",
    "id",
    "driver",
    "options",
    "location",
    "lat",
    "lon",
    "district",
    "authorization",
    "reference",
    "issued",
    "expires",
    "min_retention",
    "retention",
    "default",
    "policies",
    "policy",
    "privacy_masks",
    "polygon",
    "tags",
    "walls",
    "screens",
    "layout",
    "call_lines",
    "type",
    "recording",
    "segment",
    "discovery",
    "source",
    "plugins",
    "disabled",
    "use_blueprint",
    "path",
    "input",
    "screen_1",
    "camera_id",
    "enabled",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.sampled_from(
        [
            "14d",
            "45d",
            "simcam",
            "cam-1",
            "wall/grid.yaml",
            "Centre",
            "2022-01-10",
            "retention/legal_14_days.yaml",
            "camera/onvif_camera.yaml",
            "-x",
            "",
        ]
    ),
    st.text(max_size=12),
)
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=25,
)
TAGGED = st.sampled_from(
    [
        "hub: !secret nope\n",
        "hub: !include nope.yaml\n",
        "a: !env_var CSU_FUZZ_UNSET\n",
        "a: !input x\n",
        "a: !!python/object:os.system x\n",
        "a: &x [1]\nb: *x\n",
        "\t- a\n",
        "cameras: [{use_blueprint: {path: ../x.yaml}}]\n",
        "? [a, b]\n: c\n",
        "a: b: c\n",
    ]
)

_DIR = Path(tempfile.mkdtemp(prefix="csuhub-fuzz-"))
ROOT = Path(__file__).resolve().parent.parent
#: a real site with an include and a secrets file, and the demo's site
LILLE = ROOT / "examples" / "lille"
DEMO = ROOT / "csuhub" / "defaults" / "demo.yaml"
LOCATED = re.compile(r"^.+?:\d+:\d+: \S")
SUMMARY = re.compile(r"^\d+ errors?(\(s\))?(, \d+ warnings?(\(s\))?)?$")


def _run(args: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(args)
    out, err = stdout.getvalue(), stderr.getvalue()
    assert "Traceback" not in err, err
    # what a real terminal or pipe must be able to encode (no lone surrogates)
    out.encode("utf-8")
    err.encode("utf-8")
    return code, out, err


def check_file(site: Path) -> int:
    """Both forms of `check` on one file; asserts the shape of each verdict."""
    code, _, err = _run(["check", str(site)])
    assert code in (0, 1), err
    for line in err.splitlines():
        assert LOCATED.match(line) or SUMMARY.match(line), f"unlocated line: {line!r}"
    json_code, json_out, _ = _run(["check", "--json", str(site)])
    assert json_code == code
    document = json.loads(json_out)  # one document, nothing else on stdout
    assert document["valid"] is (code == 0)
    for issue in [*document["errors"], *document["warnings"]]:
        assert issue["file"] and issue["line"] >= 1 and issue["column"] >= 1, issue
    assert (code == 1) == bool(document["errors"])
    return code


def check(text: str) -> int:
    site = _DIR / "site.yaml"
    site.write_text(text, encoding="utf-8", errors="surrogatepass")
    return check_file(site)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_structured_documents_get_a_verdict(doc: Any) -> None:
    text = yaml.safe_dump({"root": doc} if not isinstance(doc, dict) else doc, allow_unicode=True)
    assert check(text) in (0, 1)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_gets_a_verdict(text: str) -> None:
    assert check(text) in (0, 1)


@settings(max_examples=60, deadline=None)
@given(TAGGED, DOCS)
def test_tags_and_tricks_get_a_verdict(prefix: str, doc: Any) -> None:
    assert check(prefix + yaml.safe_dump({"z": doc})) in (0, 1)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_get_a_verdict(data: bytes) -> None:
    site = _DIR / "bytes.yaml"
    site.write_bytes(data)
    check_file(site)


NESTING = st.builds(
    lambda opener, depth, key: (f"{key}: " + opener * depth).encode(),
    st.sampled_from(["[", "{a: ", "- ", "[{b: ", "\n  - "]),
    st.integers(50, 3000),
    st.sampled_from(["hub", "cameras", "retention", "x"]),
)


@settings(max_examples=30, deadline=None)
@given(NESTING, st.booleans())
def test_deep_nesting_gets_a_verdict(prefix: bytes, closed: bool) -> None:
    site = _DIR / "deep.yaml"
    site.write_bytes(prefix + (b"]" * 3000 if closed else b"") + b"\n")
    assert check_file(site) == 1 or len(prefix) < 200


def _mutate(data: bytes, ops: list[tuple[int, int, int, bytes]]) -> bytes:
    """Byte flips, deletions, insertions, line duplications, truncation."""
    out = bytearray(data)
    for kind, position, length, chunk in ops:
        if not out:
            out.extend(chunk)
            continue
        at = position % len(out)
        if kind == 0:
            out[at] ^= 1 << (length % 8)
        elif kind == 1:
            del out[at : at + length % 40]
        elif kind == 2:
            out[at:at] = chunk
        elif kind == 3:
            start = out.rfind(b"\n", 0, at) + 1
            end = out.find(b"\n", at)
            end = len(out) if end < 0 else end + 1
            out[start:start] = out[start:end] * (1 + length % 3)
        else:
            del out[at:]
    return bytes(out)


OPS = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.integers(0, 10**6),
        st.integers(0, 200),
        st.sampled_from(
            [
                b"\xff",
                b"\xe9",
                b"\x00",
                b"\t",
                b"\n  ",
                b"!include site.yaml",
                b"!secret nope",
                b"&a [*a]",
                b"[" * 80,
                b"options: {channel: 3}",
                b"policy: max_aeg",
                b": :",
                b'"\\ud800"',
            ]
        ),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["lille-site", "lille-cameras", "demo"]), OPS)
def test_mutated_real_site_files_get_a_verdict(
    which: str, ops: list[tuple[int, int, int, bytes]]
) -> None:
    work = _DIR / "lille"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(LILLE, work)
    if which == "demo":
        site = work / "demo.yaml"
        site.write_bytes(_mutate(DEMO.read_bytes(), ops))
    else:
        site = work / "site.yaml"
        target = work / ("site.yaml" if which == "lille-site" else "cameras.yaml")
        target.write_bytes(_mutate(target.read_bytes(), ops))
    check_file(site)


def test_the_unmutated_seeds_are_valid() -> None:
    """The mutation test starts from valid files (else it tests nothing)."""
    work = _DIR / "seeds"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(LILLE, work)
    shutil.copy(DEMO, work / "demo.yaml")
    assert check_file(work / "site.yaml") == 0
    assert check_file(work / "demo.yaml") == 0
