from __future__ import annotations

import pytest

from csuhub.config import ConfigInvalid, load_site_text
from csuhub.config.yaml_loader import YamlError, loads, position_of


def test_positions_are_kept_for_keys_items_and_strings() -> None:
    data = loads("hub:\n  name: x\ncameras:\n  - id: a\n  - id: b\n", "s.yaml")
    assert str(position_of(data, ["hub", "name"])) == "s.yaml:2:9"
    assert str(position_of(data, ["cameras", 1, "id"])) == "s.yaml:5:9"


def test_duplicate_keys_are_an_error() -> None:
    with pytest.raises(YamlError) as err:
        loads("hub:\n  name: a\n  name: b\n", "d.yaml")
    assert str(err.value) == "d.yaml:3:3: duplicate key 'name' (first defined at line 2)"


def test_billion_laughs_fails_fast() -> None:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    with pytest.raises(YamlError, match="too many alias expansions"):
        loads(text, "lol.yaml")


def test_unsafe_tags_are_refused() -> None:
    with pytest.raises(YamlError, match=r"unknown tag .*python/object"):
        loads("x: !!python/object/apply:os.system ['true']\n", "evil.yaml")


def test_oversized_document_is_refused() -> None:
    with pytest.raises(YamlError, match="larger than"):
        loads("a: " + "x" * (5 * 1024 * 1024), "big.yaml")


def test_syntax_error_has_position() -> None:
    with pytest.raises(YamlError) as err:
        loads("a: [1, 2\nb: 3\n", "bad.yaml")
    assert err.value.mark is not None and err.value.mark.line == 2


def test_all_errors_reported_with_positions_and_hints() -> None:
    text = (
        "hub:\n"
        "  nmae: Lille\n"
        "  web:\n"
        "    port: 99999\n"
        "camras: []\n"
        "cameras:\n"
        "  - id: Cam1\n"
        "    driver: simcam\n"
        "  - id: cam-2\n"
    )
    with pytest.raises(ConfigInvalid) as err:
        load_site_text(text, "site.yaml")
    lines = [str(i) for i in err.value.issues]
    assert lines == [
        "site.yaml:2:3: hub.nmae: unknown key 'nmae' (did you mean 'name'?)",
        "site.yaml:4:5: hub.web.port: port 99999 is outside 1-65535",
        "site.yaml:5:1: camras: unknown key 'camras' (did you mean 'cameras'?)",
        "site.yaml:7:9: cameras[0].id: 'Cam1' is not a valid identifier (lowercase letters, "
        "digits, '_' and '-', starting with a letter or digit, at most 63 characters)",
        "site.yaml:9:5: cameras[1].driver: required key 'driver' is missing",
    ]


def test_duplicate_camera_ids() -> None:
    text = "cameras:\n  - {id: a, driver: simcam}\n  - {id: a, driver: simcam}\n"
    with pytest.raises(ConfigInvalid) as err:
        load_site_text(text, "s.yaml")
    assert "duplicate camera id 'a'" in str(err.value)


def test_defaults() -> None:
    config = load_site_text("", "empty.yaml")
    hub = config.hub
    assert hub["timezone"] == "Europe/Paris"
    assert hub["language"] == "fr"
    assert hub["jurisdiction"] == "fr"
    assert hub["web"] == {"host": "127.0.0.1", "port": 8480}


def test_control_characters_are_located() -> None:
    """Regression (found by the fuzzer): PyYAML's ReaderError escaped as a traceback."""
    with pytest.raises(YamlError) as err:
        loads("hub:\n  name: a\x1fb\n", "ctl.yaml")
    assert str(err.value) == (
        "ctl.yaml:2:10: character U+001F is not allowed in YAML "
        "(control characters must be escaped in double-quoted strings)"
    )


def test_empty_sections_mean_defaults() -> None:
    """Regression (found by the fuzzer): `retention:` with nothing under it crashed check."""
    from csuhub.config import load_site_text

    config = load_site_text("hub:\nretention:\ncameras:\n", "empty.yaml")
    assert config.data["retention"]["default"] == 14 * 86400
    assert config.data["cameras"] == []
