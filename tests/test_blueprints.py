from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from csuhub.blueprint.loader import BlueprintLoader, bundled_blueprints_dir
from csuhub.blueprint.models import DOMAINS, Blueprint, BlueprintError
from csuhub.blueprint.selectors import SelectorContext
from csuhub.cli.blueprints import scaffold
from csuhub.config import ConfigInvalid, load_site
from csuhub.config.schema import CORE_SCHEMAS
from csuhub.config.yaml_loader import LoadContext, loads

ROOT = Path(__file__).resolve().parent.parent
CAMERAS = frozenset({"cam-a", "cam-b", "cam-c"})


def bp(text: str, path: str = "bp.yaml") -> Blueprint:
    return Blueprint(loads(text, path, LoadContext(allow_input=True)), path)


# inputs that make each shipped blueprint produce a valid section
SHIPPED: dict[str, tuple[str, dict[str, Any]]] = {
    "site/city_csu.yaml": ("site", {"city_name": "CSU Test"}),
    "camera/onvif_camera.yaml": (
        "cameras",
        {
            "camera_id": "cam-a",
            "camera_name": "Grand Place",
            "host": "192.0.2.10",
            "password": "x",
            "location": {"lat": 50.6368, "lon": 3.0632, "district": "Centre"},
            "authorization_reference": "2022-VP-1",
            "authorization_issued": dt.date(2022, 1, 10),
            "authorization_expires": dt.date(2027, 1, 9),
        },
    ),
    "retention/legal_14_days.yaml": ("retention", {}),
    "wall/grid.yaml": ("walls", {"screen_1": ["cam-a", "cam-b"]}),
    "wall/incident_spotlight.yaml": ("walls", {"idle_cameras": ["cam-c"]}),
    "call_line/sip.yaml": ("call_lines", {"pbx_host": "127.0.0.1"}),
    "call_line/webhook.yaml": ("call_lines", {"shared_secret": "s3cret"}),
}


def test_every_shipped_blueprint_is_tested() -> None:
    shipped = {
        p.relative_to(bundled_blueprints_dir()).as_posix()
        for p in bundled_blueprints_dir().rglob("*.yaml")
    }
    assert shipped == set(SHIPPED)


@pytest.mark.parametrize("ref", sorted(SHIPPED))
def test_shipped_blueprint_validates_and_produces_a_valid_section(ref: str) -> None:
    section, inputs = SHIPPED[ref]
    blueprint = BlueprintLoader().load(ref)
    assert blueprint.description and blueprint.inputs
    produced = blueprint.instantiate(
        inputs, SelectorContext(cameras=CAMERAS, districts=("Centre",))
    )
    if section == "site":
        assert produced["hub"]["name"] == "CSU Test"
        return
    schema, _ = CORE_SCHEMAS[section]
    value = [produced] if section in ("cameras", "walls", "call_lines") else produced
    schema(value)  # raises if the blueprint's output does not fit its section


def test_undeclared_input_is_an_error_at_its_line() -> None:
    with pytest.raises(BlueprintError) as err:
        bp(
            "blueprint:\n  name: t\n  domain: retention\n  input:\n"
            "    period: {selector: {duration: {}}}\n"
            "default: !input periode\n"
        )
    issue = err.value.issues[0]
    assert (issue.mark.line, issue.mark.column) == (6, 10)
    assert "!input 'periode' is not declared" in issue.message
    assert issue.hint == "did you mean 'period'?"


def test_bad_metadata_and_selector_are_reported_together() -> None:
    with pytest.raises(BlueprintError) as err:
        bp("blueprint:\n  name: t\n  domain: kitchen\n  input: {}\nx: 1\n")
    assert str(err.value) == (
        "bp.yaml:3:11: blueprint.domain: unknown domain; domains are site, camera, wall, "
        "retention, recording, call_line, discovery"
    )
    with pytest.raises(BlueprintError) as err:
        bp(
            "blueprint:\n  name: t\n  domain: wall\n  input:\n"
            "    n: {selector: {numbr: {}}}\nid: !input n\n"
        )
    assert "did you mean 'number'?" in str(err.value)
    with pytest.raises(BlueprintError, match="default does not fit its selector"):
        bp(
            "blueprint:\n  name: t\n  domain: wall\n  input:\n"
            "    n: {default: 99, selector: {number: {max: 8}}}\nid: !input n\n"
        )


def test_min_version_is_enforced() -> None:
    with pytest.raises(BlueprintError, match=r"needs csuhub 99\.0"):
        bp("blueprint: {name: t, domain: wall, min_version: '99.0'}\nid: x\n")


def test_instance_input_errors() -> None:
    blueprint = BlueprintLoader().load("wall/grid.yaml")
    context = SelectorContext(cameras=CAMERAS)
    with pytest.raises(BlueprintError) as err:
        blueprint.instantiate({"columns": "three", "screen_l": []}, context)
    messages = [str(i) for i in err.value.issues]
    assert any("expected a number" in m for m in messages)
    assert any("unknown input 'screen_l'" in m and "did you mean 'screen_" in m for m in messages)
    assert any("missing input 'screen_1'" in m for m in messages)
    with pytest.raises(BlueprintError, match="no camera 'cam-x' in this site; did you mean"):
        blueprint.instantiate({"screen_1": ["cam-a", "cam-x"]}, context)


def test_sections_flatten_inputs() -> None:
    blueprint = BlueprintLoader().load("camera/onvif_camera.yaml")
    assert blueprint.inputs["host"].section == "camera"
    assert blueprint.inputs["authorization_expires"].section == "law"


def test_loader_refuses_paths_outside_its_folders(tmp_path: Path) -> None:
    loader = BlueprintLoader([tmp_path])
    for ref in ("/etc/passwd.yaml", "../secrets.yaml", "x.txt"):
        with pytest.raises(Exception, match="blueprint path"):
            loader.resolve(ref)


def test_loader_caches_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "wall" / "mine.yaml"
    path.parent.mkdir()
    path.write_text("blueprint: {name: one, domain: wall}\nid: w\nscreens: []\n")
    loader = BlueprintLoader([tmp_path])
    first = loader.load("wall/mine.yaml")
    assert loader.load("wall/mine.yaml") is first
    path.write_text("blueprint: {name: two, domain: wall}\nid: w\nscreens: []\n")
    os.utime(path, ns=(1, 1))
    assert loader.load("wall/mine.yaml").name == "two"


def site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


CAMS = (
    "cameras:\n"
    "  - {id: cam-a, driver: simcam, authorization: {reference: r, issued: 2022-01-01, "
    "expires: 2099-01-01}}\n"
    "  - {id: cam-b, driver: simcam, authorization: {reference: r, issued: 2022-01-01, "
    "expires: 2099-01-01}}\n"
)


def test_use_blueprint_in_a_list_with_overrides(tmp_path: Path) -> None:
    path = site(
        tmp_path,
        CAMS + "walls:\n  - use_blueprint:\n      path: wall/grid.yaml\n"
        "      input: {screen_1: [cam-a, cam-b], columns: 2}\n    name: Mur du CSU\n",
    )
    wall = load_site(path).data["walls"][0]
    assert wall["name"] == "Mur du CSU"  # instance key wins
    assert wall["screens"][0]["cameras"] == ["cam-a", "cam-b"]
    assert wall["screens"][0]["options"]["columns"] == 2


def test_domain_mismatch_is_an_error(tmp_path: Path) -> None:
    path = site(
        tmp_path,
        CAMS + "call_lines:\n  - use_blueprint:\n"
        "      path: wall/grid.yaml\n      input: {screen_1: [cam-a]}\n",
    )
    with pytest.raises(ConfigInvalid) as err:
        load_site(path)
    issue = err.value.issues[0]
    assert "has domain 'wall' but is used where a 'call_line' is expected" in issue.message
    assert (issue.mark.line, issue.key_path) == (6, "call_lines[0].use_blueprint.path")


def test_missing_input_points_at_the_instance(tmp_path: Path) -> None:
    path = site(
        tmp_path,
        CAMS + "walls:\n  - use_blueprint:\n      path: wall/grid.yaml\n"
        "      input:\n        columns: 2\n",
    )
    with pytest.raises(ConfigInvalid) as err:
        load_site(path)
    issue = err.value.issues[0]
    assert "missing input 'screen_1'" in issue.message
    assert issue.mark.line == 7


def test_unknown_blueprint(tmp_path: Path) -> None:
    path = site(tmp_path, "retention:\n  use_blueprint: {path: retention/nope.yaml}\n")
    with pytest.raises(ConfigInvalid, match=r"no blueprint 'retention/nope\.yaml'"):
        load_site(path)


def test_site_blueprints_folder_shadows_shipped(tmp_path: Path) -> None:
    (tmp_path / "blueprints" / "retention").mkdir(parents=True)
    (tmp_path / "blueprints" / "retention" / "legal_14_days.yaml").write_text(
        "blueprint: {name: local, domain: retention}\ndefault: 7d\n"
    )
    path = site(tmp_path, "retention:\n  use_blueprint: {path: retention/legal_14_days.yaml}\n")
    assert load_site(path).data["retention"]["default"] == 7 * 86400


@pytest.mark.parametrize("domain", DOMAINS)
def test_scaffolds_are_valid_blueprints(domain: str) -> None:
    blueprint = bp(scaffold(domain, f"My {domain}"))
    assert blueprint.domain == domain


def test_blueprints_cli(cli_env: dict[str, str], tmp_path: Path) -> None:
    listing = run_cli("blueprints", "list", "--json", env=cli_env)
    assert listing.returncode == 0, listing.stderr
    refs = {b["ref"] for b in json.loads(listing.stdout)["blueprints"]}
    assert set(SHIPPED) <= refs
    show = run_cli("blueprints", "show", "wall/grid.yaml", env=cli_env)
    assert show.returncode == 0
    assert "screen_1 [screens]: cameras(min=1), required" in show.stdout
    by_name = run_cli("blueprints", "show", "SIP call line", "--json", env=cli_env)
    assert json.loads(by_name.stdout)["domain"] == "call_line"
    out = tmp_path / "bp" / "mine.yaml"
    new = run_cli("blueprints", "new", "camera", "--name", "Mine", "-o", str(out), env=cli_env)
    assert new.returncode == 0 and out.exists()
    again = run_cli("blueprints", "new", "camera", "-o", str(out), env=cli_env)
    assert again.returncode == 2 and "exists" in again.stderr
    missing = run_cli("blueprints", "show", "nope", env=cli_env)
    assert missing.returncode == 1
