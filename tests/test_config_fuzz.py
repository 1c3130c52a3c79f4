"""Property-based: whatever YAML an admin (or an attacker) writes, `check`
answers with a verdict, never with a traceback."""

from __future__ import annotations

import contextlib
import io
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


def check(text: str) -> int:
    site = _DIR / "site.yaml"
    site.write_text(text, encoding="utf-8", errors="surrogatepass")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["check", str(site)])
    assert "Traceback" not in stderr.getvalue()
    return code


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
