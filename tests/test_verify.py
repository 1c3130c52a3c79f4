"""csuhub verify: every way a package can be wrong gets its exit code and names the member.

One real package (ffmpeg cut, real hub, real key) per module; the variants are
made from its bytes. Exit codes: 0 intact and signed by a trusted key, 1
tampered, 2 unreadable or usage, 3 consistent but the signer is not trusted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import hashlib
import io
import json
import os
import shutil
import subprocess
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from csuhub.cli import main
from csuhub.recording.export import OutputError, export_evidence
from csuhub.recording.layout import hour_dir
from csuhub.recording.package import PackageWriter
from csuhub.recording.signing import fingerprint, load_private, public_pem
from csuhub.recording.verify import MANIFEST, SIGNATURE, Status, verify_package
from csuhub.testing import build_hub

HUB_NAME = "CSU de Test"


@dataclass(repr=False)
class Built:
    package: Path
    data: Path
    raw: bytes
    key: Ed25519PrivateKey
    start: float
    end: float

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"Built({self.package}, {len(self.raw)} bytes)"


def _segments(work: Path, t0: float) -> None:
    """Two 2 s segments of a tiny clip, laid out as the recorder does."""
    clip = work / "clip.mp4"
    quiet = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run(
        [
            *quiet,
            *("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10", "-t", "4"),
            *("-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10"),
            str(clip),
        ],
        check=True,
    )
    staging = work / "staging"
    staging.mkdir()
    subprocess.run(
        [
            *quiet,
            *("-i", str(clip), "-c", "copy", "-f", "segment", "-segment_time", "2"),
            *("-reset_timestamps", "1", "-segment_format", "mp4", str(staging / "%03d.mp4")),
        ],
        check=True,
    )
    root = work / "data" / "recordings"
    for index, path in enumerate(sorted(staging.iterdir())):
        start = t0 + index * 2
        folder = hour_dir(root, "cam-a", start)
        folder.mkdir(parents=True, exist_ok=True)
        path.rename(folder / time.strftime("%Y%m%dT%H%M%SZ.mp4", time.gmtime(start)))


def build_package(work: Path) -> Built:
    """A real package: ffmpeg footage, indexed by a real hub's reconciliation, exported."""
    t0 = (time.time() // 3600) * 3600 - 3600
    _segments(work, t0)
    camera = {
        "id": "cam-a",
        "driver": "simcam",
        "enabled": False,
        "authorization": {"reference": "A-1", "issued": "2022-01-01", "expires": "2099-01-01"},
    }
    hub = build_hub(work / "data", {"hub": {"name": HUB_NAME}, "cameras": [camera]})
    package = work / "pkg.zip"

    async def run() -> None:
        await hub.start()
        try:
            await export_evidence(
                hub,
                hub.recording,
                "cam-a",
                t0 + 0.5,
                t0 + 3.5,
                user="opj",
                reason="PV 1",
                output=package,
            )
        finally:
            await hub.stop()

    asyncio.run(run())
    key = load_private(work / "data")
    assert key is not None
    return Built(package, work / "data", package.read_bytes(), key, t0 + 0.5, t0 + 3.5)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, ffmpeg_bin: str) -> Built:
    return build_package(tmp_path_factory.mktemp("evidence"))


@pytest.fixture(autouse=True)
def trust_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test its own trust store: the user's own is never read or written."""
    path = tmp_path / "trusted_keys.json"
    monkeypatch.setenv("CSUHUB_TRUST_STORE", str(path))
    return path


# -- helpers --------------------------------------------------------------------


def members(raw: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def repack(items: list[tuple[str, bytes]]) -> bytes:
    """As csuhub writes a package: a variant differs only by what the test changed."""
    buffer = io.BytesIO()
    writer = PackageWriter(buffer)
    for name, data in items:
        writer.begin(name)
        buffer.write(data)
        writer.end(zlib.crc32(data), len(data))
    writer.close()
    return buffer.getvalue()


def flip(raw: bytes, member: str, at: float = 0.5) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        info = archive.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + 20
    mutated = bytearray(raw)
    mutated[start + int(info.file_size * at)] ^= 0x01
    return bytes(mutated)


def replace(raw: bytes, **new: bytes) -> bytes:
    changed = {name.replace("_", "."): data for name, data in new.items()}
    return repack([(name, changed.get(name, data)) for name, data in members(raw)])


def cli(*args: str) -> tuple[int, str, str]:
    """csuhub in process (its real main), with its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def verdict(path: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    """Human and --json runs: the same exit code, and the JSON parses."""
    code, human, err = cli("verify", str(path), *args)
    assert "Traceback" not in human + err
    json_code, text, _ = cli("verify", str(path), *args, "--json")
    assert json_code == code
    return code, human + err, json.loads(text)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- the package as exported ----------------------------------------------------


def test_an_export_lists_every_member_and_prints_the_fingerprint(built: Built) -> None:
    with zipfile.ZipFile(built.package) as archive:
        manifest = json.loads(archive.read(MANIFEST))
        readme = archive.read("LISEZMOI.txt").decode()
        names = archive.namelist()
    assert sorted(manifest["members"]) == ["LISEZMOI.txt", "public_key.pem", "video.mp4"]
    assert sorted(names) == sorted([*manifest["members"], MANIFEST, SIGNATURE])
    assert manifest["format"] == "csuhub-evidence/2"
    assert manifest["signer"] == built.fingerprint
    assert manifest["hub"] == HUB_NAME
    assert built.fingerprint in readme and HUB_NAME in readme
    code, shown, _ = cli("keys", "show", "--data", str(built.data))
    assert code == 0 and shown.strip() == built.fingerprint


def test_the_fingerprint_can_be_recomputed_without_csuhub(built: Built, tmp_path: Path) -> None:
    """docs/recording.md's openssl recipe gives the same fingerprint."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    pem = tmp_path / "hub.pub"
    pem.write_bytes(public_pem(built.key))
    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-in", str(pem), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    digest = subprocess.run(
        [openssl, "dgst", "-sha256", "-binary"], input=der[-32:], capture_output=True, check=True
    ).stdout
    assert "SHA256:" + base64.b64encode(digest).decode().rstrip("=") == built.fingerprint


def test_intact_only_against_a_trust_anchor(built: Built, tmp_path: Path) -> None:
    hub_pub = write(tmp_path, "hub.pub", public_pem(built.key))
    for anchor in (
        ("--data", str(built.data)),
        ("--key", str(hub_pub)),
        ("--fingerprint", built.fingerprint),
    ):
        code, text, document = verdict(built.package, *anchor)
        assert code == 0, text
        assert "intact" in text and built.fingerprint in text
        assert document["status"] == "intact" and document["manifest"]["hub"] == HUB_NAME
    # no anchor: consistent, but nothing says whose key it is
    code, text, document = verdict(built.package)
    assert code == 3 and "consistent but the signer is not trusted" in text
    assert built.fingerprint in text and document["signer"] == built.fingerprint


def test_the_trust_store(built: Built, tmp_path: Path, trust_store: Path) -> None:
    hub_pub = write(tmp_path, "hub.pub", public_pem(built.key))
    assert cli("keys", "trust", str(hub_pub), "--label", "CSU de Test")[0] == 0
    code, listing, _ = cli("keys", "list")
    assert code == 0 and built.fingerprint in listing and "CSU de Test" in listing
    code, _, document = verdict(built.package)
    assert code == 0 and "trust store (CSU de Test)" in document["trusted_by"]
    # anchors on the command line replace the store's
    other = fingerprint(Ed25519PrivateKey.generate())
    assert verdict(built.package, "--fingerprint", other)[0] == 3
    assert cli("keys", "untrust", built.fingerprint)[0] == 0
    assert verdict(built.package)[0] == 3
    code, _, err = cli("keys", "untrust", built.fingerprint)
    assert code == 1 and "not in the trust store" in err
    assert cli("keys", "trust", "SHA256:not-a-fingerprint")[0] == 2
    # a damaged store is an error, not an empty store
    trust_store.write_text("{not json")
    code, _, err = cli("verify", str(built.package))
    assert code == 2 and "damaged" in err
    code, out, _ = cli("verify", str(built.package), "--json")
    assert json.loads(out)["exit_code"] == 2


# -- the examples seen in the acceptance run -----------------------------------


@pytest.mark.parametrize("member", ["video.mp4", MANIFEST, "LISEZMOI.txt", SIGNATURE])
def test_one_flipped_byte_names_the_member(built: Built, tmp_path: Path, member: str) -> None:
    path = write(tmp_path, "flipped.zip", flip(built.raw, member))
    code, text, document = verdict(path, "--data", str(built.data))
    assert code == 1 and "TAMPERED" in text
    assert f"  {member}: " in text
    assert member in [p["member"] for p in document["problems"]]


@pytest.mark.parametrize(
    "manifest",
    [b"[]", b'"x"', b"{}", b'{"format": "csuhub-evidence/2", "output": "x"}', b"\xff", b"NaN"],
)
def test_a_manifest_of_the_wrong_shape(built: Built, tmp_path: Path, manifest: bytes) -> None:
    path = write(tmp_path, "shape.zip", replace(built.raw, manifest_json=manifest))
    code, text, document = verdict(path, "--data", str(built.data))
    assert code == 1
    assert "manifest.json: the signature does not match" in text
    assert {p["member"] for p in document["problems"]} <= {MANIFEST, "video.mp4", "LISEZMOI.txt"}


def test_a_wrong_shape_is_named_even_when_signed(built: Built, tmp_path: Path) -> None:
    """The hub's own key signing a manifest whose 'output' is not an object."""
    manifest = json.loads(dict(members(built.raw))[MANIFEST])
    manifest["output"] = "x"
    data = json.dumps(manifest).encode()
    path = write(
        tmp_path,
        "signed.zip",
        replace(built.raw, manifest_json=data, manifest_sig=base64.b64encode(built.key.sign(data))),
    )
    code, text, _ = verdict(path, "--data", str(built.data))
    assert code == 1 and "manifest.json: its 'output' does not agree" in text


def forge(built: Built, key: Ed25519PrivateKey, **changes: Any) -> bytes:
    """What a forger does well: the package rebuilt around their own key, consistent."""
    items = dict(members(built.raw))
    pem = public_pem(key)
    manifest = json.loads(items[MANIFEST])
    manifest.update(changes)
    manifest["signer"] = fingerprint(key)
    manifest["members"]["public_key.pem"] = {
        "sha256": hashlib.sha256(pem).hexdigest(),
        "size": len(pem),
    }
    data = json.dumps(manifest).encode()
    items.update(
        {"public_key.pem": pem, MANIFEST: data, SIGNATURE: base64.b64encode(key.sign(data))}
    )
    return repack(list(items.items()))


def test_a_package_re_signed_by_another_key_is_never_intact(built: Built, tmp_path: Path) -> None:
    forger = Ed25519PrivateKey.generate()
    path = write(tmp_path, "forged.zip", forge(built, forger, exported_by="forger"))
    for anchor in ((), ("--data", str(built.data)), ("--fingerprint", built.fingerprint)):
        code, text, document = verdict(path, *anchor)
        assert code == 3, text
        assert "consistent but the signer is not trusted" in text
        assert fingerprint(forger) in text and document["signer"] == fingerprint(forger)
        assert "intact" not in text
    # and it is the anchor that decides: trusting the forger's key makes it intact
    assert verdict(path, "--fingerprint", fingerprint(forger))[0] == 0


def test_lisezmoi_is_covered_by_the_signature(built: Built, tmp_path: Path) -> None:
    removed = write(
        tmp_path,
        "removed.zip",
        repack([(n, d) for n, d in members(built.raw) if n != "LISEZMOI.txt"]),
    )
    code, text, _ = verdict(removed, "--data", str(built.data))
    assert code == 1 and "LISEZMOI.txt: missing from the package" in text
    rewritten = write(tmp_path, "rewritten.zip", replace(built.raw, LISEZMOI_txt=b"autre texte"))
    code, text, _ = verdict(rewritten, "--data", str(built.data))
    assert code == 1 and "LISEZMOI.txt: " in text


def test_a_duplicate_or_extra_member_is_named(built: Built, tmp_path: Path) -> None:
    items = members(built.raw)
    twice = write(tmp_path, "twice.zip", repack([*items, ("video.mp4", b"other footage")]))
    code, text, _ = verdict(twice, "--data", str(built.data))
    assert code == 1 and "video.mp4: appears 2 times" in text
    extra = write(tmp_path, "extra.zip", repack([*items, ("notes.txt", b"hello")]))
    code, text, _ = verdict(extra, "--data", str(built.data))
    assert code == 1 and "notes.txt: not listed in the signed manifest" in text


def test_a_rewritten_container_is_caught(built: Built, tmp_path: Path) -> None:
    """Same members, same bytes, but zipped by another tool: not what was handed over."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members(built.raw):
            archive.writestr(name, data)
    path = write(tmp_path, "rezipped.zip", buffer.getvalue())
    code, text, _ = verdict(path, "--data", str(built.data))
    assert code == 1 and "zip structure: not the zip csuhub wrote" in text
    trailing = write(tmp_path, "trailing.zip", built.raw + b"\0")
    assert verdict(trailing, "--data", str(built.data))[0] in (1, 2)


def test_unreadable_input_and_usage_errors_exit_2(built: Built, tmp_path: Path) -> None:
    text_file = write(tmp_path, "notes.txt", b"hello, not a package\n")
    code, text, document = verdict(text_file)
    assert code == 2 and "not a csuhub package" in text and "TAMPERED" not in text
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("a.txt", "a")
    code, text, _ = verdict(write(tmp_path, "other.zip", other_zip.getvalue()))
    assert code == 2 and "not a csuhub package" in text
    code, text, _ = verdict(tmp_path / "nowhere.zip")
    assert code == 2 and "cannot be read" in text
    code, text, document = verdict(built.package, "--key", str(tmp_path / "MISSING"))
    assert code == 2 and "MISSING: no such key file" in text and document["exit_code"] == 2
    code, text, _ = verdict(built.package, "--key", str(text_file))
    assert code == 2 and "not a PEM public key" in text
    code, text, _ = verdict(built.package, "--fingerprint", "MD5:00")
    assert code == 2 and "not a key fingerprint" in text


def test_no_traceback_end_to_end(built: Built, tmp_path: Path) -> None:
    """The installed command (a subprocess), on the two that used to crash."""
    env = {**os.environ, "CSUHUB_TRUST_STORE": str(tmp_path / "store.json")}
    bad = write(tmp_path, "bad.zip", flip(built.raw, "video.mp4"))
    result = run_cli("verify", str(bad), "--json", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert json.loads(result.stdout)["problems"][0]["member"] == "video.mp4"
    result = run_cli("verify", str(built.package), "--key", str(tmp_path / "MISSING"), env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no such key file" in result.stderr


def _in_thread(func: Any, *args: Any) -> Any:
    """Run ``func`` with a deadline: a verifier that blocks fails the test, not CI."""
    import threading

    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(func(*args)), daemon=True)
    thread.start()
    thread.join(10)
    assert result, f"{func.__name__}{args} did not return within 10 s"
    return result[0]


def test_a_fifo_a_directory_or_an_empty_file_is_unreadable_at_once(
    built: Built, tmp_path: Path
) -> None:
    """Found by the acceptance run: a FIFO made ``verify`` wait for a writer for ever
    (and ``--key FIFO`` too); only regular files are read."""
    fifo = tmp_path / "package.zip"
    os.mkfifo(fifo)
    try:
        result = _in_thread(verify_package, fifo)
        assert result.status is Status.UNREADABLE and result.exit_code == 2
        assert "FIFO" in result.problems[0].message
        code, text, document = _in_thread(verdict, built.package, "--key", str(fifo))
        assert code == 2 and "FIFO" in text and document["exit_code"] == 2
    finally:
        with contextlib.suppress(OSError):  # unblock a regressed open(), if any
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    folder = tmp_path / "folder.zip"
    folder.mkdir()
    code, text, _ = verdict(folder)
    assert code == 2 and "a directory, not a regular file" in text
    code, text, _ = verdict(write(tmp_path, "empty.zip", b""))
    assert code == 2 and "not a csuhub package" in text


def test_a_device_that_never_ends_is_unreadable(tmp_path: Path) -> None:
    """``/dev/zero``: zipfile read it to its end, which never comes, filling memory.
    A subprocess, so that a regression is killed by the timeout instead of eating CI."""
    env = {**os.environ, "CSUHUB_TRUST_STORE": str(tmp_path / "store.json")}
    result = run_cli("verify", "/dev/zero", "--json", env=env, timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "unreadable"
    assert "a device, not a regular file" in document["problems"][0]["message"]


def test_a_trust_store_that_is_not_a_file_is_an_error(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSUHUB_TRUST_STORE", "/dev/zero")
    code, text, _ = verdict(built.package)
    assert code == 2 and "trust store /dev/zero cannot be read: a device" in text


# -- export from the CLI --------------------------------------------------------


def test_export_to_a_missing_or_unwritable_path_exits_2(built: Built, tmp_path: Path) -> None:
    base = ["export", "cam-a", "--data", str(built.data), "--reason", "x"]
    times = ["--from", str(built.start), "--to", str(built.end)]
    for output, message in (
        (tmp_path / "missing-dir" / "x.zip", "no folder"),
        (tmp_path / ("x" * 300 + ".zip"), "cannot write"),
    ):
        code, out, err = cli(*base, *times, "-o", str(output))
        assert code == 2 and message in err and "Traceback" not in out + err
        code, out, _ = cli(*base, *times, "-o", str(output), "--json")
        assert code == 2 and json.loads(out)["exit_code"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name != "trusted_keys.json"]


async def test_a_package_that_cannot_be_put_in_place_leaves_nothing(
    built: Built, tmp_path: Path
) -> None:
    """The whole export runs, then the rename fails: no package, no temporary folder."""
    folder = tmp_path / "out"
    folder.mkdir()
    hub = build_hub(built.data, {"hub": {"name": HUB_NAME}})
    await hub.start()
    try:
        with pytest.raises(OutputError, match="cannot write"):
            await export_evidence(
                hub,
                hub.recording,
                "cam-a",
                built.start,
                built.end,
                user="u",
                reason="r",
                output=folder / ("x" * 300 + ".zip"),
            )
    finally:
        await hub.stop()
    assert list(folder.iterdir()) == []


def test_the_cli_manifest_names_the_hub_and_the_os_user(built: Built, tmp_path: Path) -> None:
    """Run with --data only (no site file): the hub's name comes from its last start."""
    exported = tmp_path / "cli.zip"
    code, out, err = cli(
        "export",
        "cam-a",
        "--data",
        str(built.data),
        "--from",
        str(built.start),
        "--to",
        str(built.end),
        "--reason",
        "PV 2",
        "-o",
        str(exported),
        "--json",
    )
    assert code == 0, err
    manifest = json.loads(out.splitlines()[-1])["manifest"]
    assert manifest["hub"] == HUB_NAME
    assert manifest["exported_by"] == getpass.getuser() != "cli"
    assert verify_package(exported).status is Status.UNTRUSTED
    assert verdict(exported, "--data", str(built.data))[0] == 0
