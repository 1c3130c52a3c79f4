from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from conftest import run_cli

import csuhub
from csuhub.cli import build_parser
from csuhub.cli.common import Output, hub_pid, plural, signal_hub, table
from csuhub.store import Store


def test_version(cli_env: dict[str, str]) -> None:
    result = run_cli("--version", env=cli_env)
    assert result.returncode == 0
    assert result.stdout.strip() == f"csuhub {csuhub.__version__}"


def test_unknown_option_is_a_usage_error(cli_env: dict[str, str]) -> None:
    result = run_cli("plugins", "--bogus", env=cli_env)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "unrecognized arguments: --bogus" in result.stderr


def test_missing_config_is_one_line_exit_2(cli_env: dict[str, str], tmp_path: Path) -> None:
    for args in (["run", "-c", str(tmp_path / "nope.yaml")], ["check", str(tmp_path / "no.yaml")]):
        result = run_cli(*args, env=cli_env)
        assert result.returncode == 2
        assert (
            result.stderr.strip()
            == f"csuhub: error: {tmp_path}/{Path(args[-1]).name}: no such file"
        )
        assert "Traceback" not in result.stderr


def test_check_valid_and_invalid(cli_env: dict[str, str], tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "hub: {name: Lille}\ncameras:\n  - id: cam-1\n    driver: simcam\n"
        "    authorization: {reference: 2024/059, issued: 2024-01-10, expires: 2099-01-09}\n"
    )
    result = run_cli("check", str(good), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{good}: valid (1 camera)"
    assert result.stderr == ""

    bad = tmp_path / "bad.yaml"
    bad.write_text("hub:\n  nmae: Lille\nretension: 14d\n")
    result = run_cli("check", str(bad), env=cli_env)
    assert result.returncode == 1
    assert f"{bad}:2:3: hub.nmae: unknown key 'nmae' (did you mean 'name'?)" in result.stderr
    assert f"{bad}:3:1: retension: unknown key 'retension'" in result.stderr
    assert "2 errors" in result.stderr

    result = run_cli("check", str(bad), "--json", env=cli_env)
    body = json.loads(result.stdout)
    assert result.returncode == 1 and body["valid"] is False
    assert body["errors"][0]["line"] == 2 and body["errors"][0]["path"] == "hub.nmae"


def test_check_yaml_syntax_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("hub: [\n")
    result = run_cli("check", str(bad), env=cli_env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{bad}:2:1:")
    assert "Traceback" not in result.stderr


def test_run_refuses_invalid_config(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - {id: cam-1}\n")
    result = run_cli("run", "-c", str(bad), env=cli_env)
    assert result.returncode == 1
    assert f"{bad}:2:5: cameras[0].driver: required key 'driver' is missing" in result.stderr


def test_plugins_json_lists_bundled_and_example(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("plugins", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["simcam"]["state"] == "loaded"
    assert plugins["simcam"]["distribution"] == "csuhub"
    assert "register_camera_drivers" in plugins["simcam"]["hooks"]
    assert "camera_driver:simcam" in plugins["simcam"]["provides"]
    assert plugins["example-vendor"]["state"] == "loaded"

    site = tmp_path / "site.yaml"
    site.write_text("plugins:\n  disabled: [example-vendor]\n")
    result = run_cli("plugins", "-c", str(site), env=cli_env)
    assert "- example-vendor 0.1.0 [disabled]" in result.stdout


def test_tokens_lifecycle(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()  # tokens may be made before the first start, in a real dir
    data = str(tmp_path / "data")
    result = run_cli(
        "tokens", "create", "alice", "--role", "operator", "--data", data, "--json", env=cli_env
    )
    assert result.returncode == 0, result.stderr
    token = json.loads(result.stdout)["token"]
    assert token.startswith("csu_") and len(token) > 30
    again = run_cli("tokens", "create", "alice", "--role", "admin", "--data", data, env=cli_env)
    assert again.returncode == 1 and "already exists" in again.stderr
    listing = run_cli("tokens", "list", "--data", data, env=cli_env)
    assert listing.stdout.splitlines() == ["NAME   ROLE      STATE", "alice  operator  active"]
    assert token not in listing.stdout
    assert run_cli("tokens", "revoke", "alice", "--data", data, env=cli_env).returncode == 0
    assert run_cli("tokens", "revoke", "alice", "--data", data, env=cli_env).returncode == 1


def _read_until(proc: subprocess.Popen[str], predicate, timeout: float = 30) -> list[str]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if predicate(lines):
            return lines
    raise AssertionError("expected output never came:\n" + "".join(lines))


def test_demo_runs_serves_health_and_stops_on_sigterm(
    cli_env: dict[str, str], tmp_path: Path, ffmpeg_bin: str
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "csuhub",
            "demo",
            "--data",
            str(tmp_path / "demo"),
            "--port",
            "0",
            "--json",
        ],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def all_online(lines: list[str]) -> bool:
            events = [json.loads(line) for line in lines]
            online = {
                e["camera_id"]
                for e in events
                if e.get("event") == "camera_state_changed" and e["new_state"] == "online"
            }
            return len(online) == 4

        lines = _read_until(proc, all_online, timeout=60)
        events = [json.loads(line) for line in lines]
        started = next(e for e in events if e.get("event") == "hub_started")
        url = started["web_url"]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as resp:
            health = json.loads(resp.read())
        assert health["status"] == "ok"
        assert health["cameras"]["online"] == 4
        assert health["plugins"]["simcam"] == "loaded"
        # every other endpoint needs a token
        try:
            urllib.request.urlopen(f"{url}/plugins/example-vendor/cameras", timeout=5)
        except urllib.error.HTTPError as err:
            assert err.code == 401
        else:
            raise AssertionError("unauthenticated request was served")
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert '"event": "hub_stopped"' in out
        assert "Traceback" not in err
        assert (tmp_path / "demo" / "csuhub.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


# -- the CLI must not give confident wrong answers -----------------------------------


def make_data(
    data: Path,
    segments: list[tuple[float, float]] = (),  # type: ignore[assignment]
    camera: str = "cam-a",
    *,
    online: bool = False,
) -> Path:
    """A hub's data directory with a real store: ``camera`` in the register and
    its segments indexed."""

    async def build() -> None:
        store = Store(data / "csuhub.db")
        await store.open()
        try:
            await store.upsert_camera(
                camera,
                name=camera,
                driver="simcam",
                state="online" if online else "offline",
                authorization_status="valid",
            )
            for i, (a, b) in enumerate(segments):
                await store.add_segment(
                    camera, start=a, end=b, size=10, path=f"{camera}/{i}.mp4", sha256=None
                )
        finally:
            await store.close()

    data.mkdir(parents=True, exist_ok=True)
    asyncio.run(build())
    return data


def test_unknown_camera_is_an_error_not_zero_percent(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # seen: `recordings gaps cam-nope` answered rc 0, "0.000 % recorded"
    data = str(make_data(tmp_path / "d", [(1000.0, 1060.0)]))
    for action in ("gaps", "list", "report"):
        result = run_cli("recordings", action, "cam-nope", "--data", data, env=cli_env)
        assert result.returncode == 1, (action, result.stdout)
        assert result.stderr.startswith("csuhub: error: no camera 'cam-nope'")
        assert result.stderr.count("\n") == 1 and result.stdout == ""
    result = run_cli("recordings", "gaps", "cam-nope", "--data", data, "--json", env=cli_env)
    assert result.returncode == 1 and json.loads(result.stdout)["exit_code"] == 1


def test_inverted_range_is_an_error_not_a_hundred_percent(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # seen: --from after --to gave "100.000 % recorded"
    data = str(make_data(tmp_path / "d", [(1000.0, 1060.0)]))
    for action in ("gaps", "list"):
        result = run_cli(
            "recordings",
            action,
            "cam-a",
            "--from",
            "2000",
            "--to",
            "1000",
            "--data",
            data,
            env=cli_env,
        )
        assert result.returncode == 1, result.stdout
        assert "is not before --to" in result.stderr and "%" not in result.stdout
    # --from in the future, --to defaulting to now: inverted too, and said so
    result = run_cli(
        "recordings",
        "gaps",
        "cam-a",
        "--from",
        str(time.time() + 3600),
        "--data",
        data,
        env=cli_env,
    )
    assert result.returncode == 1 and "--to (now," in result.stderr


def test_a_report_day_outside_the_calendar_is_an_error_not_a_traceback(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Found by ACCEPT2: --day 9999-12-31 died with OverflowError (no next
    midnight); --day 0001-01-01 reported "0 %" between negative epochs."""
    data = str(make_data(tmp_path / "d", [(1000.0, 1060.0)]))
    for day in ("9999-12-31", "0001-01-01"):
        result = run_cli("recordings", "report", "cam-a", "--day", day, "--data", data)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr == (
            f"csuhub: error: --day {day} is outside the days this hub can report "
            "(1970-01-02 to 9999-12-30)\n"
        )
    result = run_cli("recordings", "report", "cam-a", "--day", "1970-01-02", "--data", data)
    assert result.returncode == 0 and "% recorded" in result.stdout, result.stderr


def test_read_only_commands_never_create_a_data_directory(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # seen: a mistyped --data was created silently, with an empty database
    typo = tmp_path / "dtaa"
    commands = [
        ["recordings", "gaps", "cam-a"],
        ["recordings", "list", "cam-a"],
        ["cameras", "list"],
        ["retention", "status"],
        ["requisitions", "list"],
        ["tokens", "list"],
        ["tokens", "create", "bob", "--role", "viewer"],
        ["keys", "public"],
    ]
    for command in commands:
        result = run_cli(*command, "--data", str(typo), env=cli_env)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr == (
            f"csuhub: error: no hub data at {typo}; pass --data or start the hub\n"
        ), command
        assert not typo.exists(), command
    # nothing anywhere, no --data: the same refusal, and the default is not created
    result = run_cli("recordings", "gaps", "cam-a", env=cli_env)
    default = Path(cli_env["XDG_DATA_HOME"]) / "csuhub"
    assert result.returncode == 2 and f"no hub data at {default};" in result.stderr
    assert not Path(cli_env["XDG_DATA_HOME"]).exists()


def test_a_corrupted_empty_or_newer_database_is_one_line_not_a_traceback(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Found by ACCEPT2: a corrupted csuhub.db or one from a newer csuhub gave a
    sqlite3/StoreError traceback; an empty csuhub.db was migrated into a new
    database by a read-only command."""
    data = tmp_path / "d"
    data.mkdir()
    database = data / "csuhub.db"
    database.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    before = database.read_bytes()
    for command in (["recordings", "gaps", "cam-a"], ["retention", "status"]):
        for extra in ([], ["--json"]):
            result = run_cli(*command, "--data", str(data), *extra, env=cli_env)
            assert result.returncode == 2, result.stderr
            assert "Traceback" not in result.stderr
            message = f"{database}: not a usable csuhub database (file is not a database)"
            if extra:
                assert json.loads(result.stdout) == {"error": message, "exit_code": 2}
            else:
                assert result.stderr == f"csuhub: error: {message}\n"
    assert database.read_bytes() == before

    make_data(data.parent / "new", [(1000.0, 1060.0)])
    newer = data.parent / "new" / "csuhub.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version=999")
    conn.close()
    result = run_cli("recordings", "list", "cam-a", "--data", str(newer.parent), env=cli_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "has schema version 999, newer than this csuhub" in result.stderr

    database.write_bytes(b"")
    result = run_cli("recordings", "gaps", "cam-a", "--data", str(data), env=cli_env)
    assert result.stderr == f"csuhub: error: no hub data at {data}; pass --data or start the hub\n"
    assert database.stat().st_size == 0


def test_commands_find_the_demo_hub_as_the_readme_says(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # seen: without --data, commands read ~/.local/share/csuhub while the demo writes
    # ~/.local/share/csuhub/demo: the README's commands answered "0 %" from a new db
    xdg = Path(cli_env["XDG_DATA_HOME"])
    now = time.time()
    make_data(xdg / "csuhub" / "demo", [(now - 3600, now - 1800)], "cam-grand-place")
    span = ["--from", str(now - 3600), "--to", str(now - 1800)]
    result = run_cli("recordings", "gaps", "cam-grand-place", *span, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cam-grand-place: 100.000 % recorded")
    # data in both places and no hub running: ambiguous, so an error, not a guess
    make_data(xdg / "csuhub", [], "cam-prod")
    result = run_cli("recordings", "gaps", "cam-grand-place", *span, env=cli_env)
    assert result.returncode == 2 and "pass --data to say which" in result.stderr
    # the one whose hub runs wins
    with hub_lock(xdg / "csuhub" / "demo"):
        result = run_cli("recordings", "gaps", "cam-grand-place", *span, env=cli_env)
    assert result.returncode == 0 and "100.000 % recorded" in result.stdout


def test_time_being_recorded_and_the_future_are_not_missing(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # seen: the open segment and the future counted as "not recorded"
    now = time.time()
    data = make_data(tmp_path / "d", [(now - 600, now - 20)], online=True)
    span = ["--from", str(now - 600), "--to", str(now + 600), "--data", str(data)]
    with hub_lock(data):  # a hub runs on it
        result = run_cli("recordings", "gaps", "cam-a", *span, env=cli_env)
        report = json.loads(
            run_cli("recordings", "gaps", "cam-a", *span, "--json", env=cli_env).stdout
        )
    assert result.returncode == 0, result.stderr
    head, *gaps = result.stdout.splitlines()
    assert head.startswith("cam-a: 100.000 % recorded") and "in the future" in head
    assert "being recorded" in head
    assert gaps[0].endswith("recording in progress") and gaps[1].endswith("future")
    assert [g["state"] for g in report["gaps"]] == ["in_progress", "future"]
    assert report["percent"] == 100.0 and report["measured_s"] < 600
    # no hub running: the same minute is a hole, honestly (the pid left in the file
    # by a crash, now perhaps another process's, does not count without the lock)
    (data / "csuhub.pid").write_text(f"{os.getpid()}\n")
    result = run_cli("recordings", "gaps", "cam-a", *span, env=cli_env)
    assert "100.000" not in result.stdout and "not recorded" in result.stdout


@contextlib.contextmanager
def hub_lock(data: Path) -> Iterator[None]:
    """What a running hub does to its data directory: hold ``csuhub.pid`` locked."""
    with open(data / "csuhub.pid", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def test_a_stale_pid_is_not_signalled(tmp_path: Path) -> None:
    """Seen in review: after a crash the pid in ``csuhub.pid`` may belong to an
    unrelated process; ``reload`` and ``cameras adopt`` would SIGHUP (kill) it."""
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "csuhub.pid").write_text(f"{bystander.pid}\n")
        assert hub_pid(tmp_path) is None and signal_hub(tmp_path) is None
        time.sleep(0.1)
        assert bystander.poll() is None  # still alive: never signalled
        with hub_lock(tmp_path):
            assert hub_pid(tmp_path) == os.getpid()
    finally:
        bystander.kill()
        bystander.wait()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_pipe_is_whole_lines() -> None:
    # seen: a log of `export` or `retention sweep` was one line of carriage returns
    err = io.StringIO()
    out = Output(False, io.StringIO(), err)
    for i in range(101):
        out.progress("cutting", i / 100)
    out.progress("done", 1.0)
    text = err.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert text.splitlines()[:3] == ["cutting: 0 %", "cutting: 10 %", "cutting: 20 %"]
    assert text.splitlines()[-1] == "done: 100 %"


def test_progress_on_a_terminal_rewrites_one_line_and_errors_start_clean() -> None:
    tty = _Tty()
    out = Output(False, io.StringIO(), tty)
    out.progress("cutting", 0.5)
    out.error("export refused: no footage", 1)
    assert (
        tty.getvalue() == f"\r{'cutting':<40}  50.0 %\ncsuhub: error: export refused: no footage\n"
    )
    # seen: an error with no progress before it started with a blank line
    err = io.StringIO()
    Output(False, io.StringIO(), err).error("boom", 1)
    assert err.getvalue() == "csuhub: error: boom\n"


def test_tables_fit_the_longest_value_and_plurals_are_right() -> None:
    # seen: fixed widths cut or misaligned long ids; "1 camera(s)"
    text = table(
        [("cam-a-very-long-identifier", 5, "ok"), ("c", 12345, "damaged")],
        ("ID", "N", "STATUS"),
        right={1},
    )
    assert text.splitlines() == [
        "ID                              N  STATUS",
        "cam-a-very-long-identifier      5  ok",
        "c                           12345  damaged",
    ]
    assert table([]) == ""
    assert [plural(n, "camera") for n in (0, 1, 2)] == ["0 cameras", "1 camera", "2 cameras"]
    assert plural(1, "policy", "policies") == "1 policy" and plural(3, "policy", "policies") == (
        "3 policies"
    )


def test_every_from_and_to_option_has_help() -> None:
    # seen: `--from/--to` had no help text
    found = []

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if set(action.option_strings) & {"--from", "--to"}:
                found.append((parser.prog, action.option_strings))
                assert action.help and len(action.help) > 10, parser.prog
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    walk(child)

    walk(build_parser())
    progs = {prog for prog, _ in found}
    assert {"csuhub recordings gaps", "csuhub export", "csuhub requisitions create"} <= progs


def test_listings_fit_long_ids_and_count_right(cli_env: dict[str, str], tmp_path: Path) -> None:
    # seen: `cameras list` padded ids to 32 characters, so a longer id pushed its row
    # out of line; "1 camera(s)" in summaries
    long_id = "cam-" + "tres-long-identifiant-de-camera-" * 2
    data = make_data(tmp_path / "d", [(1000.0, 1060.0)], long_id)
    result = run_cli("cameras", "list", "--data", str(data), env=cli_env)
    assert result.returncode == 0, result.stderr
    header, row, count = result.stdout.splitlines()
    assert header.index("STATE") == row.index("offline") == len(long_id) + 2
    assert count == "1 camera"
    result = run_cli("recordings", "list", long_id, "--from", "0", "--data", str(data), env=cli_env)
    assert result.stdout.splitlines()[-1] == "1 segment"
    assert "(s)" not in result.stdout


def test_an_empty_destruction_register_still_has_its_csv_header(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # seen: `retention register --csv` printed nothing at all on an empty register,
    # where `requisitions list --csv` prints its header (an audit script needs both)
    data = str(make_data(tmp_path / "d", [(1000.0, 1060.0)]))
    result = run_cli("retention", "register", "--csv", "--data", data, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "id,camera_id,day,policy,segments,bytes,seconds,footage_start,footage_end,"
        "first_destroyed_at,last_destroyed_at"
    ]
