"""The site file as admins write it: every invalid fixture gives its message
at its location; the legal and referential rules hold; the Lille example is valid."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from conftest import run_cli

from csuhub.config import ConfigInvalid, load_site_text
from csuhub.hub import Hub

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "invalid"
ROOT = Path(__file__).resolve().parent.parent
EXPECT = re.compile(
    r"^# expect: (?:(?P<file>[\w/.-]+\.yaml):)?(?P<line>\d+):(?P<col>\d+): (?P<text>.+)$"
)


def _cases() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*.yaml") if p.name != "secrets.yaml")


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.stem)
def test_invalid_fixture_reports_message_at_location(path: Path) -> None:
    match = EXPECT.match(path.read_text().splitlines()[0])
    assert match, f"{path.name} has no '# expect:' line"
    file = (path.parent / match["file"]) if match["file"] else path
    where = f"{file}:{match['line']}:{match['col']}: "
    with pytest.raises(ConfigInvalid) as err:
        Hub.from_file(path, web=False).setup()
    lines = [str(issue) for issue in err.value.issues]
    assert any(line.startswith(where) and match["text"] in line for line in lines), (
        f"expected {where}...{match['text']}\n got:\n" + "\n".join(lines)
    )


def test_every_error_is_reported_not_just_the_first() -> None:
    text = (
        "hub: {nmae: x, timezone: Mars/Olympus}\n"
        "retention: {default: 60d}\n"
        "cameras:\n"
        "  - {id: cam-1, driver: simcam, retention: forever}\n"
        "  - {id: cam-1, driver: simcam}\n"
        "walls:\n"
        "  - {id: w, screens: []}\n"
        "call_lines:\n"
        "  - {id: l}\n"
    )
    with pytest.raises(ConfigInvalid) as err:
        load_site_text(text, "all.yaml")
    lines = [str(i) for i in err.value.issues]
    expected = [
        "all.yaml:1:7: hub.nmae: unknown key 'nmae'",
        "all.yaml:1:26: hub.timezone: unknown time zone 'Mars/Olympus'",
        "all.yaml:4:44: cameras[0].retention: expected a duration",
        "all.yaml:5:10: cameras[1].id: duplicate camera id 'cam-1'",
        "all.yaml:2:22: retention.default: retention 60d exceeds the legal maximum of 30 days",
        "all.yaml:7:13: walls[0].screens: a wall needs at least one screen",
        "all.yaml:9:5: call_lines[0].type: required key 'type' is missing",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)


def test_retention_cap_hint_names_the_law() -> None:
    with pytest.raises(ConfigInvalid) as err:
        load_site_text("retention: {default: 45d}\n", "s.yaml")
    issue = err.value.issues[0]
    assert issue.message == "retention 45d exceeds the legal maximum of 30 days (CSI L252-5)"
    assert issue.hint and "requisition" in issue.hint
    # the cap binds policies too
    with pytest.raises(ConfigInvalid, match="retention 31d exceeds"):
        load_site_text(
            "retention:\n  policies: [{policy: max_age, options: {max_age: 31d}}]\n", "s.yaml"
        )


def test_authorisation_warnings_by_date() -> None:
    text = (
        "cameras:\n"
        "  - {id: old, driver: simcam, authorization: "
        "{reference: A, issued: 2020-01-01, expires: 2026-01-01}}\n"
        "  - {id: soon, driver: simcam, authorization: "
        "{reference: B, issued: 2022-01-01, expires: 2026-12-10}}\n"
        "  - {id: none, driver: simcam}\n"
        "  - {id: cam-off, driver: simcam, enabled: false}\n"
    )
    config = load_site_text(text, "s.yaml", today=dt.date(2026, 11, 25))
    warnings = [str(w) for w in config.warnings]
    assert any("authorisation A expired on 2026-01-01" in w for w in warnings)
    assert any("authorisation B expires on 2026-12-10 (in 15 days)" in w for w in warnings)
    assert any("cameras[2]: no prefectoral authorisation" in w for w in warnings)
    assert len(warnings) == 3  # a disabled camera needs none
    with pytest.raises(ConfigInvalid):
        load_site_text(text, "s.yaml", today=dt.date(2026, 11, 25), strict=True)


def test_unknown_components_are_warnings_with_suggestions(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "cameras:\n  - id: c\n    driver: simcm\n"
        "    authorization: {reference: A, issued: 2022-01-01, expires: 2099-01-01}\n"
    )
    config = Hub.from_file(path, web=False).setup()
    (warning,) = config.warnings
    assert str(warning) == (
        f"{path}:3:13: warning: cameras[0].driver: no loaded plugin "
        "provides camera driver 'simcm' (did you mean 'simcam'?)"
    )
    with pytest.raises(ConfigInvalid):
        Hub.from_file(path, web=False, strict=True).setup()


def test_lille_example_is_valid(cli_env: dict[str, str]) -> None:
    result = run_cli("check", str(ROOT / "examples" / "lille" / "site.yaml"), "--json", env=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["cameras"] >= 50
    assert set(report["blueprints"]) == {
        "site/city_csu.yaml",
        "retention/legal_14_days.yaml",
        "camera/onvif_camera.yaml",
        "call_line/sip.yaml",
        "call_line/webhook.yaml",
        "wall/grid.yaml",
        "wall/incident_spotlight.yaml",
    }
    # only "no plugin provides X" warnings: the example itself is clean
    assert all("no loaded plugin provides" in w["message"] for w in report["warnings"])


def test_lille_example_structure() -> None:
    config = Hub.from_file(ROOT / "examples" / "lille" / "site.yaml", web=False).setup()
    cameras = config.data["cameras"]
    districts = {c["location"]["district"] for c in cameras}
    assert districts == set(config.data["hub"]["districts"])  # at least one per district
    assert config.data["retention"]["default"] == 14 * 86400
    (main, _) = config.data["walls"]
    assert len(main["screens"]) == 4
    assert main["screens"][3]["layout"] == "incident_spotlight"
    assert {line["type"] for line in config.data["call_lines"]} == {"sip", "webhook"}
    password = cameras[0]["credentials"]["password"]
    assert "exemple" not in repr(config.data) and password == "exemple-a-changer"


def test_one_bad_list_entry_does_not_hide_the_others_problems(tmp_path: Path) -> None:
    """A camera (or discovery source) that fails the core schema is reported at
    its line; every other entry of the section is still checked: its driver's
    options, its authorisation, the walls that name it."""
    site = tmp_path / "site.yaml"
    site.write_text(
        "cameras:\n"
        "  - {id: Bad Id, driver: simcam}\n"
        "  - id: cam-1\n"
        "    driver: simcam\n"
        "    authorization: {reference: A, issued: 2022-01-01, expires: 2099-01-01}\n"
        "    options: {channel: 3}\n"
        "  - {id: cam-2, driver: simcam}\n"
        "  - {id: cam-3, driver: simcam, retention: forever}\n"
        "discovery:\n"
        "  - {source: simcam, interval: never}\n"
        "  - {source: simcam, options: {count: -1}}\n"
        "walls:\n"
        "  - id: w\n"
        "    screens: [{id: s, layout: grid, cameras: [cam-1, cam-9, cam-3]}]\n"
    )
    with pytest.raises(ConfigInvalid) as err:
        Hub.from_file(site, web=False).setup()
    lines = [str(i) for i in err.value.issues]
    expected = [
        f"{site}:2:10: cameras[0].id: 'Bad Id' is not a valid identifier",
        f"{site}:8:44: cameras[3].retention: expected a duration",
        f"{site}:6:15: cameras[1].options.channel: camera driver 'simcam': unknown key",
        f"{site}:7:5: warning: cameras[2]: no prefectoral authorisation",
        f"{site}:10:32: discovery[0].interval: expected a duration",
        f"{site}:11:32: discovery[1].options.count: discovery source 'simcam'",
        f"{site}:14:54: walls[0].screens[0].cameras[1]: no camera 'cam-9' in this site",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    # an invalid camera is that camera's problem, not the wall's that names it
    assert not any("no camera 'cam-3'" in line for line in lines), lines
