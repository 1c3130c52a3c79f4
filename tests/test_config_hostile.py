"""Site files an outside run broke `check` with, and plugin options it never checked.

Each test is an example from issue 10 (3b, 3c): deep nesting, a bad byte, an
empty file, a typo in a retention policy's or a driver's options. They must
come back as ``file:line:col: message`` lines (and JSON with ``--json``),
and a retention configuration that cannot be built must stop the hub from
starting rather than let it run with no policy.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from conftest import run_cli

from csuhub.config import ConfigInvalid, load_raw
from csuhub.config.yaml_loader import MAX_DEPTH, MAX_INCLUDE_NESTING
from csuhub.hookspecs import hookimpl
from csuhub.hub import Hub
from csuhub.plugins import make_plugin_manager
from csuhub.specs import CallLineSpec, RetentionPolicySpec, WallLayoutSpec

LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): ")
AUTH = "authorization: {reference: A-1, issued: 2022-01-10, expires: 2099-01-09}"


def check(path: Path, *extra: str) -> tuple[int, list[str], Any]:
    """Run `csuhub check` as a process, twice: human lines, then the JSON document."""
    human = run_cli("check", str(path), *extra)
    assert "Traceback" not in human.stderr, human.stderr
    as_json = run_cli("check", "--json", str(path), *extra)
    assert "Traceback" not in as_json.stderr, as_json.stderr
    assert as_json.returncode == human.returncode
    return human.returncode, human.stderr.splitlines(), json.loads(as_json.stdout)


def located_lines(lines: list[str]) -> list[re.Match[str]]:
    """Every line but the summary names a position."""
    body = [line for line in lines if not re.match(r"^\d+ error", line)]
    matches = [LOCATED.match(line) for line in body]
    assert all(matches), body
    return [m for m in matches if m is not None]


# -- 3b: site files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 3000 + "]" * 3000 + "\n",  # flow style: a few kB
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 400)),  # block style
        "a: " + "{b: " * 2000 + "1" + "}" * 2000 + "\n",
    ],
    ids=["flow-sequences", "block-sequences", "flow-mappings"],
)
def test_deeply_nested_small_file_is_located_not_a_traceback(tmp_path: Path, text: str) -> None:
    site = tmp_path / "deep.yaml"
    site.write_text(text)
    code, lines, document = check(site)
    assert code == 1
    (match,) = located_lines(lines)
    assert match["file"] == str(site)
    assert f"nested more than {MAX_DEPTH} levels deep" in lines[0]
    assert document["valid"] is False
    (error,) = document["errors"]
    assert error["file"] == str(site) and error["line"] >= 1 and error["column"] > 1
    assert "nested more than" in error["message"]


def test_nesting_bound_spans_includes(tmp_path: Path) -> None:
    half = MAX_DEPTH // 2 + 2
    (tmp_path / "part.yaml").write_text("[" * half + "]" * half + "\n")
    site = tmp_path / "site.yaml"
    site.write_text("hub:\n  name: " + "[" * half + "!include part.yaml" + "]" * half + "\n")
    with pytest.raises(ConfigInvalid) as err:
        load_raw(site)
    (issue,) = err.value.issues
    assert issue.mark is not None and issue.mark.file == str(tmp_path / "part.yaml")
    assert "nested more than" in issue.message


def test_include_chain_is_bounded(tmp_path: Path) -> None:
    count = MAX_INCLUDE_NESTING + 5
    for i in range(count):
        (tmp_path / f"p{i}.yaml").write_text(f"!include p{i + 1}.yaml\n")
    (tmp_path / f"p{count}.yaml").write_text("name: x\n")
    site = tmp_path / "site.yaml"
    site.write_text("hub: !include p0.yaml\n")
    code, lines, document = check(site)
    assert code == 1
    located_lines(lines)
    assert f"includes nested more than {MAX_INCLUDE_NESTING} files deep" in lines[0]
    assert document["errors"][0]["line"] == 1


def test_non_utf8_byte_is_reported_at_its_line_and_column(tmp_path: Path) -> None:
    site = tmp_path / "latin1.yaml"
    site.write_bytes("hub:\n  name: Lille\n  address: \"rue d'Épée ".encode() + b'caf\xe9"\n')
    code, lines, document = check(site)
    assert code == 1
    # column in characters: "  address: \"rue d'Épée caf" is 26 characters (É is 2 bytes)
    assert lines[0].startswith(f"{site}:3:27: byte 0xE9 is not UTF-8"), lines
    assert (document["errors"][0]["line"], document["errors"][0]["column"]) == (3, 27)


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "---\n", "{}\n"])
def test_empty_site_file_warns_what_a_minimal_site_needs(tmp_path: Path, text: str) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(text)
    code, lines, document = check(site)
    assert code == 0
    assert lines[0].startswith(f"{site}:1:1: warning: the site file is empty"), lines
    assert "cameras" in lines[0] and "hub" in lines[0]
    (warning,) = document["warnings"]
    assert warning["severity"] == "warning" and "minimal site" in warning["hint"]
    strict = run_cli("check", "--strict", str(site))
    assert strict.returncode == 1


# -- 3c: plugin options --------------------------------------------------------------------


POLICY_TYPO = """\
hub:
  name: Policy typo
retention:
  default: 14d
  policies:
    - policy: max_age
      options:
        max_aeg: 10d
"""


def test_typo_in_a_retention_policys_options_is_an_error_with_its_line(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(POLICY_TYPO)
    code, lines, document = check(site)
    assert code == 1
    assert lines[0] == (
        f"{site}:8:9: retention.policies[0].options.max_aeg: retention policy 'max_age': "
        "unknown key 'max_aeg' (did you mean 'max_age'?)"
    )
    (error,) = document["errors"]
    assert (error["line"], error["column"], error["path"]) == (
        8,
        9,
        "retention.policies[0].options.max_aeg",
    )


def test_run_refuses_to_start_with_a_policy_it_cannot_build(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(POLICY_TYPO)
    data = tmp_path / "data"
    result = run_cli("run", "-c", str(site), "--data", str(data), timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{site}:8:9: retention.policies[0].options.max_aeg" in result.stderr
    assert "policies: none" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert not (data / "csuhub.db").exists()  # nothing started


def test_bad_driver_option_is_reported_by_check_with_its_line(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "cameras:\n"
        f"  - id: cam-1\n    driver: simcam\n    {AUTH}\n"
        "    options:\n      width: 160\n      channel: 3\n"
    )
    code, lines, document = check(site)
    assert code == 1
    assert lines[0].startswith(
        f"{site}:7:7: cameras[0].options.channel: camera driver 'simcam': unknown key 'channel'"
    ), lines
    assert document["errors"][0]["path"] == "cameras[0].options.channel"


def test_discovery_and_recording_options_are_checked(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "discovery:\n"
        "  - source: simcam\n    options: {count: -1}\n"
        "recording:\n"
        "  backend: ffmpeg\n  options:\n    rtsp_timeout: soon\n"
    )
    code, lines, _ = check(site)
    assert code == 1
    joined = "\n".join(lines)
    assert f"{site}:3:15: discovery[0].options.count: discovery source 'simcam'" in joined
    assert f"{site}:7:19: recording.options.rtsp_timeout: recording backend 'ffmpeg'" in joined


def test_a_named_retention_policy_no_plugin_provides_is_an_error(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("retention:\n  policies:\n    - policy: max_ages\n")
    code, lines, _ = check(site)
    assert code == 1
    assert lines[0].startswith(
        f"{site}:3:15: retention.policies[0].policy: no loaded plugin provides retention "
        "policy 'max_ages': the hub will not start without it (did you mean 'max_age'?)"
    ), lines


class Components:
    """A vendor plugin: a call line, a wall layout, a policy, and a buggy schema."""

    @staticmethod
    def broken_schema(options: Any) -> Any:
        raise KeyError("oops")

    @hookimpl
    def register_call_lines(self, hub: Any) -> list[CallLineSpec]:
        return [
            CallLineSpec(
                name="sip",
                factory=lambda hub, options: None,
                config_schema=vol.Schema({vol.Required("uri"): str}),
            ),
            CallLineSpec(
                name="buggy", factory=lambda hub, o: None, config_schema=self.broken_schema
            ),
        ]

    @hookimpl
    def register_wall_layouts(self, hub: Any) -> list[WallLayoutSpec]:
        return [
            WallLayoutSpec(
                name="grid",
                factory=lambda hub, options: None,
                config_schema=vol.Schema({vol.Optional("columns", default=2): int}),
            )
        ]

    @hookimpl
    def register_retention_policies(self, hub: Any) -> list[RetentionPolicySpec]:
        def factory(hub: Any, options: dict[str, Any]) -> Any:
            if options["explode"]:
                raise RuntimeError("cannot reach the archive")
            return object()

        return [
            RetentionPolicySpec(
                name="archive",
                factory=factory,
                config_schema=vol.Schema({vol.Optional("explode", default=False): bool}),
            )
        ]


def vendor_hub(site: Path, tmp_path: Path) -> Hub:
    pm = make_plugin_manager(plugins=[("vendor", Components())])
    return Hub.from_file(site, data_dir=tmp_path / "data", pm=pm, web=False)


def test_every_kind_of_component_gets_its_options_checked(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "cameras:\n"
        f"  - id: cam-1\n    driver: simcam\n    {AUTH}\n"
        "call_lines:\n"
        "  - {id: line-1, type: sip, options: {url: 'sip:x'}}\n"
        "  - {id: line-2, type: buggy}\n"
        "walls:\n"
        "  - id: wall-1\n    screens:\n"
        "      - {id: s1, layout: grid, cameras: [cam-1], options: {columns: many}}\n"
    )
    with pytest.raises(ConfigInvalid) as err:
        vendor_hub(site, tmp_path).setup()
    lines = [str(i) for i in err.value.issues]
    assert any(
        line.startswith(f"{site}:6:39: call_lines[0].options.url: call line type 'sip': ")
        and "unknown key 'url' (did you mean 'uri'?)" in line
        for line in lines
    ), lines
    assert any(
        line.startswith(f"{site}:6:29: call_lines[0].options.uri: call line type 'sip': ")
        and "required key 'uri' is missing" in line
        for line in lines
    ), lines
    assert any(
        line.startswith(f"{site}:7:5: call_lines[1].options: ")
        and "call line type 'buggy' could not check its options (KeyError" in line
        for line in lines
    ), lines
    assert any(
        line.startswith(f"{site}:11:69: ")
        and "walls[0].screens[0].options.columns: wall layout 'grid'" in line
        for line in lines
    ), lines


def test_a_policy_whose_factory_fails_stops_start_up(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "retention:\n  policies:\n    - policy: max_age\n"
        "    - policy: archive\n      options: {explode: true}\n"
    )
    hub = vendor_hub(site, tmp_path)
    hub.setup()  # valid options: only building the policy fails

    async def start() -> None:
        await hub.start()

    with pytest.raises(ConfigInvalid) as err:
        asyncio.run(start())
    (issue,) = err.value.issues
    assert str(issue).startswith(
        f"{site}:4:7: retention.policies[1]: retention policy 'archive' cannot be built: "
        "RuntimeError: cannot reach the archive"
    ), str(issue)
    assert hub.state == "stopped"
    assert hub.retention.policies == []  # never "some of them"


def test_check_reports_a_policy_that_validates_but_cannot_be_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check` builds the retention policies as `run` would, so it cannot say
    "valid" for a file `run` refuses."""
    import csuhub.hub
    from csuhub.cli import main

    site = tmp_path / "site.yaml"
    site.write_text(
        "retention:\n  policies:\n    - policy: archive\n      options: {explode: true}\n"
    )
    real = csuhub.hub.make_plugin_manager

    def with_vendor(**kwargs: Any) -> Any:
        return real(**kwargs, plugins=[("vendor", Components())])

    monkeypatch.setattr(csuhub.hub, "make_plugin_manager", with_vendor)
    assert main(["check", str(site)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"{site}:3:7: retention.policies[0]: retention policy 'archive' cannot be built: "
        "RuntimeError: cannot reach the archive"
    ), err
    assert main(["check", "--json", str(site)]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False and document["errors"][0]["line"] == 3


def test_bundled_policy_options_that_would_misbehave_are_refused(tmp_path: Path) -> None:
    """max_age 0 destroys footage as soon as it is indexed; storage thresholds
    out of order make storage_pressure never act or act at every sweep."""
    site = tmp_path / "site.yaml"
    site.write_text(
        "retention:\n  policies:\n"
        "    - policy: max_age\n      options: {max_age: 0s}\n"
        "    - policy: storage_pressure\n      options: {min_free_percent: 10, "
        "target_free_percent: 8}\n"
        "    - policy: storage_pressure\n      options: {min_free_percent: 5, "
        "critical_free_percent: 6}\n"
    )
    code, lines, _ = check(site)
    assert code == 1
    assert lines[:3] == [
        f"{site}:4:26: retention.policies[0].options.max_age: retention policy 'max_age': "
        "max_age must be longer than 0 (0 would destroy all footage at once)",
        f"{site}:6:39: retention.policies[1].options.target_free_percent: retention policy "
        "'storage_pressure': target_free_percent (8) must be above min_free_percent (10)",
        f"{site}:8:38: retention.policies[2].options.critical_free_percent: retention policy "
        "'storage_pressure': critical_free_percent (6) must be below min_free_percent (5)",
    ]


def test_env_var_default_continues_the_nesting_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CSUHUB_TEST_UNSET", raising=False)
    half = MAX_DEPTH // 2 + 2
    site = tmp_path / "site.yaml"
    site.write_text(
        "a: "
        + "[" * half
        + "!env_var 'CSUHUB_TEST_UNSET "  # a quoted scalar: its default is parsed later
        + "[" * half
        + "]" * half
        + "'"
        + "]" * half
        + "\n"
    )
    with pytest.raises(ConfigInvalid) as err:
        load_raw(site)
    assert "nested more than" in err.value.issues[0].message


def test_an_impossible_date_is_located_not_a_traceback(tmp_path: Path) -> None:
    """Found by the mutation fuzz: PyYAML reads 2022-13-10 as a date and raises
    a bare ValueError ("month must be in 1..12")."""
    site = tmp_path / "site.yaml"
    site.write_text(
        "cameras:\n  - id: cam-1\n    driver: simcam\n"
        "    authorization: {reference: A-1, issued: 2022-13-10, expires: 2099-01-09}\n"
    )
    code, lines, document = check(site)
    assert code == 1
    assert lines[0] == f"{site}:4:45: invalid value: month must be in 1..12"
    assert document["errors"][0]["line"] == 4


def test_a_fifo_or_device_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Found by ACCEPT2: ``check`` on a FIFO waited for a writer for ever, a FIFO
    include was 'no such file' and a FIFO secrets.yaml was silently ignored."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    code, lines, document = check(fifo)  # run_cli's timeout fails a hang
    assert code == 2
    assert lines == [f"csuhub: error: {fifo}: cannot read: is a FIFO, not a regular file"]
    assert document["exit_code"] == 2
    code, lines, _ = check(Path("/dev/zero"))
    assert code == 2
    assert "is a character device" in lines[0]

    site = tmp_path / "site.yaml"
    site.write_text("hub: !include fifo.yaml\n")
    code, lines, document = check(site)
    assert code == 1
    assert lines[0] == f"{site}:1:6: !include 'fifo.yaml': is a FIFO, not a file ({fifo})"

    fifo.rename(tmp_path / "secrets.yaml")
    site.write_text("hub: {name: x}\n")
    code, lines, _ = check(site)
    assert code == 1
    assert lines[0] == f"{tmp_path / 'secrets.yaml'}:1:1: secrets.yaml is a FIFO, not a file"


@pytest.mark.parametrize("value", [".nan", "-.inf"])
def test_a_non_finite_duration_is_refused(tmp_path: Path, value: str) -> None:
    """Found by ACCEPT2: ``max_age: .nan`` was 'valid' (a NaN age never expires,
    and a NaN min_retention made max() depend on the order of its arguments)."""
    site = tmp_path / "site.yaml"
    site.write_text(
        f"retention:\n  default: {value}\n"
        f"cameras:\n  - id: cam-1\n    driver: simcam\n    retention: {value}\n"
        f"    authorization: {{reference: A-1, issued: 2022-01-10, expires: 2099-01-09,"
        f" min_retention: {value}}}\n"
    )
    code, lines, document = check(site)
    assert code == 1
    assert {e["path"] for e in document["errors"]} == {
        "retention.default",
        "cameras[0].retention",
        "cameras[0].authorization.min_retention",
    }, lines
    site.write_text(
        f"retention:\n  policies:\n    - {{policy: max_age, options: {{max_age: {value}}}}}\n"
    )
    code, lines, document = check(site)
    assert code == 1
    assert [e["path"] for e in document["errors"]] == ["retention.policies[0].options.max_age"]
