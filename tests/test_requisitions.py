"""Judicial requisitions end to end: real ffmpeg footage, real SQLite, the API and the CLI."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path

import aiohttp
import pytest
from conftest import run_cli
from retention_helpers import indexed, seed
from test_recording import simcam, site, wait_segments

from csuhub.audit.ethics import exports
from csuhub.hub import Hub
from csuhub.recording.export import verify_package
from csuhub.recording.signing import fingerprint
from csuhub.recording.trust import hub_anchor
from csuhub.requisitions.model import RequisitionError
from csuhub.security.tokens import hash_secret
from csuhub.testing import build_hub

DAY = 86400.0
NOW = time.time() // 3600 * 3600


async def test_a_requisition_over_a_partly_destroyed_range_reports_exactly_what_exists(
    tmp_path: Path,
) -> None:
    hub = build_hub(
        tmp_path / "data",
        {"hub": {"timezone": "UTC"}, "retention": {"default": "14d", "interval": "1h"}},
    )
    await hub.start()
    try:
        await asyncio.wait_for(hub.retention.swept.wait(), 10)
        await hub.store.upsert_camera("cam-a", name="A", driver="rtsp", state="adopted")
        t0 = NOW - 15 * DAY  # 2 h of footage: the first hour is past its 14 days
        starts = [t0 + i * 120 for i in range(60)]
        seed(
            hub.data_dir / "csuhub.db",
            hub.recording.storage_root(),
            [("cam-a", s) for s in starts if not (t0 + 5400 <= s < t0 + 6000)],
        )
        await hub.store.add_gap("cam-a", t0 + 5400, t0 + 6000, "camera offline")
        await hub.retention.sweep(now=t0 + 14 * DAY + 3600)  # the first hour goes
        req = await hub.requisitions.create(
            {
                "reference": "PV 2026/123",
                "service": "SLPJ Lille",
                "officer": "OPJ Martin",
                "legal_frame": "enquete_preliminaire",
                "cameras": ["cam-a"],
                "start": t0 - 600,
                "end": t0 + 7200,
                "reason": "vol à l'arraché",
            },
            "sup",
        )
        scope = req["scope"]["cam-a"]
        assert scope["available"] == [
            {"from": t0 + 3600, "to": t0 + 5400},
            {"from": t0 + 6000, "to": t0 + 7200},
        ]
        pieces = [
            (p["from"], p["to"], p["why"], p.get("policy") or p.get("reason"))
            for p in scope["missing"]
        ]
        assert pieces == [
            (t0 - 600, t0, "not_recorded", "unknown"),
            (t0, t0 + 3600, "destroyed", "max_age"),
            (t0 + 5400, t0 + 6000, "not_recorded", "camera offline"),
        ]
        assert scope["held_segments"] == 25
        assert req["status"] == "held"
        # audited in the registration's transaction: the new id, the reason, what is held
        (created,) = await hub.store.audit_trail.entries(action="requisition.create")
        assert created["target"] == f"requisition:{req['id']}"
        assert created["reason"] == "vol à l'arraché" and created["actor"] == "sup"
        assert json.loads(created["details"])["held_segments"] == 25
        await hub.requisitions.close(req["id"], "sup", "unknown")
        steps = [
            (e["action"], e["outcome"])
            for e in await hub.store.audit_trail.entries(target=f"requisition:{req['id']}")
        ]
        assert steps == [
            ("requisition.create", "ok"),
            ("requisition.close", "ok"),
            ("requisition.release", "ok"),
        ]
        with pytest.raises(RequisitionError, match="already closed"):
            await hub.requisitions.close(req["id"], "sup", "helped")
        last = (await hub.store.audit_trail.entries(target=f"requisition:{req['id']}"))[-1]
        assert (last["action"], last["outcome"]) == ("requisition.close", "refused")
        assert (await hub.store.audit_trail.verify({})).ok
        # closed, the hour that was held is past its age: the next sweep takes it
        await hub.retention.sweep(now=NOW + 2 * DAY)
        assert len(indexed(hub.data_dir / "csuhub.db")) == 0
    finally:
        await hub.stop()


async def test_requisition_workflow_over_the_api(tmp_path: Path, ffmpeg_bin: str) -> None:
    config = site(tmp_path, [simcam()])
    hub = Hub.from_file(config, data_dir=tmp_path / "data")
    await hub.start()
    try:
        await wait_segments(hub, "cam-a", 3)
        segments = await hub.store.segments("cam-a")
        start, end = segments[0].start, segments[2].end
        for name in ("auditor", "operator", "supervisor", "requisition_officer"):
            await hub.store.create_token(name, name, hash_secret(f"csu_{name}"))

        def auth(role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer csu_{role}"}

        base = hub.web.url
        payload = {
            "reference": "PV-42",
            "service": "Commissariat central",
            "officer": "OPJ Roy",
            "legal_frame": "flagrant_delit",
            "cameras": ["cam-a"],
            "from": start,
            "to": end,
            "reason": "rixe",
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/api/requisitions", json=payload, headers=auth("operator")
            ) as r:
                assert r.status == 403  # least privilege: a requisition officer registers
            async with http.post(
                f"{base}/api/requisitions", json=payload, headers=auth("supervisor")
            ) as r:
                assert r.status == 403  # not the supervisor either: a role is a set, not a rung
            async with http.post(
                f"{base}/api/requisitions",
                json={**payload, "legal_frame": "x"},
                headers=auth("requisition_officer"),
            ) as r:
                assert r.status == 400
                assert "legal_frame" in (await r.json())["error"]
            async with http.post(
                f"{base}/api/requisitions", json=payload, headers=auth("requisition_officer")
            ) as r:
                assert r.status == 201, await r.text()
                req = await r.json()
            assert req["status"] == "held" and req["scope"]["cam-a"]["held_segments"] == 3
            assert all(s.hold for s in await hub.store.segments("cam-a", start, end))
            async with http.post(
                f"{base}/api/requisitions", json=payload, headers=auth("requisition_officer")
            ) as r:
                assert r.status == 409 and "already registered" in (await r.json())["error"]
            rid = req["id"]
            async with http.post(
                f"{base}/api/requisitions/{rid}/export", headers=auth("requisition_officer")
            ) as r:
                assert r.status == 200, await r.text()
                exported = await r.json()
            name = exported["files"][0]["file"]
            async with http.get(
                f"{base}/api/requisitions/{rid}/files/{name}", headers=auth("requisition_officer")
            ) as r:
                assert r.status == 200
                package = tmp_path / "got.zip"
                package.write_bytes(await r.read())
            async with http.get(
                f"{base}/api/requisitions/{rid}/files/..%2Fcsuhub.db",
                headers=auth("requisition_officer"),
            ) as r:
                assert r.status == 404
            async with http.get(
                f"{base}/api/requisitions/{rid}/files/receipt.html",
                headers=auth("requisition_officer"),
            ) as r:
                receipt = await r.text()
            async with http.post(
                f"{base}/api/requisitions/{rid}/close",
                json={"outcome": "maybe"},
                headers=auth("requisition_officer"),
            ) as r:
                assert r.status == 409
            async with http.post(
                f"{base}/api/requisitions/{rid}/deliver",
                json={"to": "OPJ Roy"},
                headers=auth("requisition_officer"),
            ) as r:
                assert (await r.json())["status"] == "delivered"
            async with http.post(
                f"{base}/api/requisitions/{rid}/close",
                json={"outcome": "helped"},
                headers=auth("requisition_officer"),
            ) as r:
                closed = await r.json()
            assert closed["status"] == "closed" and closed["outcome"] == "helped"
            assert not any(s.hold for s in await hub.store.segments("cam-a", start, end))
            async with http.get(
                f"{base}/api/requisitions?format=csv", headers=auth("operator")
            ) as r:
                assert r.status == 403  # operators watch; requisitions are not theirs
            async with http.get(
                f"{base}/api/requisitions?format=csv", headers=auth("auditor")
            ) as r:
                assert r.status == 403  # the ethics committee sees figures, not cases
            async with http.get(
                f"{base}/api/requisitions?format=csv", headers=auth("requisition_officer")
            ) as r:
                rows = list(csv.DictReader(io.StringIO(await r.text())))
            async with http.get(f"{base}/api/requisitions/stats", headers=auth("auditor")) as r:
                stats = await r.json()
            async with http.get(f"{base}/api/requisitions/{rid}", headers=auth("auditor")) as r:
                assert r.status == 403  # the ethics committee sees figures, not cases
            async with http.get(f"{base}/api/register/destructions", headers=auth("auditor")) as r:
                assert r.status == 200
            async with http.get(f"{base}/api/retention/status", headers=auth("operator")) as r:
                status = await r.json()
        verdict = verify_package(package, [hub_anchor(hub.data_dir)])
        assert verdict.ok, verdict.problems
        assert fingerprint(hub.recording.signing_key) in receipt
        with zipfile.ZipFile(package) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        assert manifest["requisition"]["reference"] == "PV-42"
        assert "PV-42" in receipt and "@page" in receipt and "OPJ Roy" in receipt
        assert rows[0]["reference"] == "PV-42" and rows[0]["extraction_file"] == name
        assert rows[0]["outcome"] == "helped"
        assert stats["total"]["outcomes"]["helped"] == 1 and stats["total"]["exports"] == 1
        assert "cameras" not in json.dumps(stats["months"])
        assert status["cameras"][0]["camera_id"] == "cam-a"
        actions = [r.action for r in await hub.store.audit_records()]
        for action in (
            "requisition.create",
            "requisition.export",
            "requisition.deliver",
            "requisition.close",
            "recording.export",
            "requisition.download",
        ):
            assert action in actions
        # one story per step, none left unconcluded, and one export in the figures
        entries = await hub.store.audit_trail.entries()
        steps = [
            (e["action"], e["outcome"], e["ref"] is not None)
            for e in entries
            if e["action"].startswith("requisition.")
        ]
        assert steps == [
            ("requisition.create", "refused", False),  # the legal frame
            ("requisition.create", "ok", False),
            ("requisition.create", "refused", False),  # the reference is taken
            ("requisition.export", "started", False),
            ("requisition.export", "ok", True),
            ("requisition.download", "ok", False),
            ("requisition.download", "refused", False),
            ("requisition.download", "ok", False),
            ("requisition.close", "refused", False),  # "maybe"
            ("requisition.deliver", "ok", False),
            ("requisition.close", "ok", False),
            ("requisition.release", "ok", False),
        ]
        ended = {e["ref"] for e in entries}
        assert [e for e in entries if e["outcome"] == "started" and e["id"] not in ended] == []
        figures = await hub.store.call(exports, 0, time.time() + 60)
        assert figures == {"total": 1, "by_reason": {"rixe": 1}, "not_done": {}}
    finally:
        await hub.stop()


def test_requisition_workflow_from_the_cli(tmp_path: Path, ffmpeg_bin: str) -> None:
    config = site(tmp_path, [simcam()])
    data = tmp_path / "data"

    async def record() -> tuple[float, float]:
        hub = Hub.from_file(config, data_dir=data)
        await hub.start()
        try:
            await wait_segments(hub, "cam-a", 3)
            segments = await hub.store.segments("cam-a")
            return segments[0].start, segments[2].end
        finally:
            await hub.stop()

    start, end = asyncio.run(record())
    common = ["-c", str(config), "--data", str(data)]
    made = run_cli(
        "requisitions",
        "create",
        *common,
        "--reference",
        "PV-7",
        "--service",
        "BSU",
        "--officer",
        "OPJ Lee",
        "--frame",
        "information_judiciaire",
        "--camera",
        "cam-a",
        "--from",
        str(start),
        "--to",
        str(end),
        "--reason",
        "enquête",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    req = json.loads(made.stdout)
    assert req["status"] == "held"
    out = tmp_path / "handover"
    exported = run_cli("requisitions", "export", "PV-7", *common, "-o", str(out), "--json")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "progress" for line in lines)
    assert (out / "receipt.html").is_file()
    package = next(out.glob("*.zip"))
    verified = run_cli("verify", str(package), "--data", str(data))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shown = run_cli("keys", "show", *common)
    assert shown.returncode == 0 and shown.stdout.strip() in (out / "receipt.html").read_text()
    # a second export is a new file: the first package, listed in the extraction
    # register with its SHA-256, is never replaced (it was, under the same name)
    first = package.read_bytes()
    again = run_cli("requisitions", "export", "PV-7", *common, "-o", str(out), "--json")
    assert again.returncode == 0, again.stderr
    packages = sorted(out.glob("*.zip"))
    assert len(packages) == 2 and package.read_bytes() == first
    detail = json.loads(run_cli("requisitions", "show", "PV-7", *common, "--json").stdout)
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in packages}
    listed = {e["file"]: e["sha256"] for e in detail["extractions"]}
    assert listed == on_disk
    closing = run_cli("requisitions", "close", "PV-7", *common, "--outcome", "not_helped")
    assert closing.returncode == 0, closing.stderr
    again = run_cli("requisitions", "close", "PV-7", *common, "--outcome", "helped")
    assert again.returncode == 1 and "already closed" in again.stderr
    listing = run_cli("requisitions", "list", *common, "--csv")
    assert "PV-7" in listing.stdout and package.name in listing.stdout
    status = run_cli("retention", "status", *common, "--json")
    assert json.loads(status.stdout)["legal_cap"] == 30 * DAY
    dry = run_cli("retention", "sweep", "--dry-run", *common, "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["dry_run"] is True
