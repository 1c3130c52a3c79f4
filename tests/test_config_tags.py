from __future__ import annotations

from pathlib import Path

import pytest

from csuhub.config import ConfigInvalid, load_raw, load_site, validate_site
from csuhub.config.yaml_loader import LoadContext, Secret, YamlError, load_file, loads
from csuhub.hub import Hub


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_secret_from_secrets_yaml_is_masked(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "cam_password: hunter2\n")
    site = write(
        tmp_path / "site.yaml",
        "cameras:\n  - id: c\n    driver: simcam\n"
        "    credentials: {username: u, password: !secret cam_password}\n",
    )
    config = load_site(site)
    password = config.data["cameras"][0]["credentials"]["password"]
    assert password == "hunter2"
    assert isinstance(password, Secret)
    assert "hunter2" not in repr(config.data)


def test_secret_is_found_in_a_parent_directory_up_to_the_root(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "token: abc\n")
    write(tmp_path / "parts" / "hub.yaml", "name: !secret token\n")
    site = write(tmp_path / "site.yaml", "hub: !include parts/hub.yaml\n")
    assert load_site(site).hub["name"] == "abc"


def test_missing_secret_is_located(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "other: x\n")
    site = write(tmp_path / "site.yaml", "hub:\n  name: !secret nope\n")
    with pytest.raises(ConfigInvalid) as err:
        load_site(site)
    issue = err.value.issues[0]
    assert (issue.mark.file, issue.mark.line, issue.mark.column) == (str(site), 2, 9)
    assert "secret 'nope' not found" in issue.message


def test_include_relative_and_positions_in_the_included_file(tmp_path: Path) -> None:
    write(tmp_path / "cams.yaml", "- id: c1\n  driver: simcam\n- id: Bad\n  driver: simcam\n")
    site = write(tmp_path / "site.yaml", "cameras: !include cams.yaml\n")
    with pytest.raises(ConfigInvalid) as err:
        load_site(site)
    # cameras[0] is still checked (its missing authorisation is a warning)
    issue = next(i for i in err.value.issues if i.severity == "error")
    assert issue.mark.file == str(tmp_path / "cams.yaml")
    assert (issue.mark.line, issue.key_path) == (3, "cameras[1].id")


def test_include_outside_the_config_directory_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "outside.yaml", "a: 1\n")
    site = write(tmp_path / "conf" / "site.yaml", "hub: !include ../outside.yaml\n")
    with pytest.raises(ConfigInvalid, match="outside the configuration directory") as err:
        load_site(site)
    assert err.value.issues[0].mark.line == 1


def test_include_loop_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "b: !include b.yaml\n")
    write(tmp_path / "b.yaml", "a: !include a.yaml\n")
    site = write(tmp_path / "site.yaml", "hub: !include a.yaml\n")
    with pytest.raises(ConfigInvalid) as err:
        load_site(site)
    # a.yaml's own problems are reported too (b is not a key of hub)
    issue = next(i for i in err.value.issues if "include loop" in i.message)
    assert "include loop: site.yaml -> a.yaml -> b.yaml -> a.yaml" in issue.message
    assert issue.mark.file == str(tmp_path / "b.yaml")


def test_include_of_a_missing_file(tmp_path: Path) -> None:
    site = write(tmp_path / "site.yaml", "hub:\n  web: !include web.yaml\n")
    with pytest.raises(ConfigInvalid, match="no such file") as err:
        load_site(site)
    assert err.value.issues[0].mark.line == 2


def test_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSU_NAME", "CSU Lille")
    assert loads("a: !env_var CSU_NAME\n", "x.yaml") == {"a": "CSU Lille"}
    assert loads("a: !env_var CSU_UNSET 8480\n", "x.yaml") == {"a": 8480}
    with pytest.raises(YamlError, match="CSU_UNSET is not set") as err:
        loads("a: 1\nb: !env_var CSU_UNSET\n", "x.yaml")
    assert err.value.mark.line == 2


def test_input_only_in_blueprints() -> None:
    with pytest.raises(YamlError, match="only allowed inside a blueprint"):
        loads("a: !input x\n", "site.yaml")
    assert loads("a: !input x\n", "bp.yaml", LoadContext(allow_input=True))["a"].name == "x"


def test_tabs_are_explained(tmp_path: Path) -> None:
    with pytest.raises(YamlError, match="tab character") as err:
        loads("hub:\n\tname: x\n", "tabs.yaml")
    assert err.value.mark.line == 2


def test_hundred_megabyte_file_is_refused_fast(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)
    import time

    start = time.monotonic()
    with pytest.raises(YamlError, match="larger than"):
        load_file(big)
    assert time.monotonic() - start < 1.0


def test_files_read_are_tracked_for_reload(tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", "s: x\n")
    write(tmp_path / "hub.yaml", "name: !secret s\n")
    site = write(tmp_path / "site.yaml", "hub: !include hub.yaml\n")
    loaded = load_raw(site)
    assert {p.name for p in loaded.files} == {"site.yaml", "hub.yaml", "secrets.yaml"}


def test_every_load_error_is_reported_with_the_schema_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing secret, an unset variable, an impossible date, an unknown tag,
    a missing include, a duplicate key: each is reported at its place, together,
    and with the schema and plugin-option errors of the rest of the file."""
    monkeypatch.delenv("CSU_UNSET", raising=False)
    write(tmp_path / "secrets.yaml", "other: x\n")
    site = write(
        tmp_path / "site.yaml",
        "hub:\n"
        "  name: !secret nope\n"
        "  data_dir: !env_var CSU_UNSET\n"
        "  timezone: Mars/Olympus\n"
        "cameras:\n"
        "  - id: cam-1\n"
        "    driver: simcam\n"
        "    authorization: {reference: A, issued: 2022-13-10, expires: 2099-01-09}\n"
        "  - {id: cam-4, driver: simcam, options: {channel: 3}}\n"
        "  - id: cam-2\n"
        "    driver: simcam\n"
        "    location: !unknown x\n"
        "    credentials: !include creds.yaml\n"
        "    id: cam-3\n",
    )
    with pytest.raises(ConfigInvalid) as err:
        Hub.from_file(site, web=False).setup()
    lines = [str(i) for i in err.value.issues]
    expected = [
        f"{site}:2:9: secret 'nope' not found",
        f"{site}:3:13: environment variable CSU_UNSET is not set",
        f"{site}:4:13: hub.timezone: unknown time zone",
        f"{site}:8:43: invalid value: month must be in 1..12",
        f"{site}:9:43: cameras[1].options.channel: camera driver 'simcam': unknown key",
        f"{site}:12:15: unknown tag '!unknown'",
        f"{site}:13:18: !include 'creds.yaml': no such file",
        f"{site}:14:5: duplicate key 'id' (first defined at line 10)",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    # the placeholders raise no second, confusing error at the same place
    marks = [line.split(": ", 1)[0] for line in lines]
    assert len(marks) == len(set(marks)), lines
    assert "nope" not in repr(err.value.issues[0].path)


def test_a_load_error_fails_closed_whoever_validates_the_tree(tmp_path: Path) -> None:
    """The loader goes on past a missing secret, but the placeholder it leaves is an
    error to any validation of that tree: a hub never starts with it."""
    site = write(
        tmp_path / "site.yaml",
        "cameras:\n  - id: c\n    driver: simcam\n    options: {anything: !secret nope}\n",
    )
    loaded = load_raw(site)  # reported with the rest, not alone
    with pytest.raises(ConfigInvalid, match="secret 'nope' not found"):
        validate_site(loaded.raw, str(site))
    with pytest.raises(ConfigInvalid, match="secret 'nope' not found"):
        Hub(loaded.raw, source=str(site), web=False).setup()
    # without a site file to recover into, the loader still stops at once
    with pytest.raises(YamlError, match="secret 'nope' not found"):
        load_file(site, LoadContext())
