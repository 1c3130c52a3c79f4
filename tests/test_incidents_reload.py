"""A reload that changes ``call_lines:`` is not applied to the running lines
(a line holds sockets and its peers' sessions from its start): the reload says
a restart is needed, and the hub keeps the lines it runs and their settings."""

from __future__ import annotations

from pathlib import Path

from test_incidents import LinePlugin

from csuhub.events import ConfigReloaded
from csuhub.hub import Hub
from csuhub.plugins import make_plugin_manager


def write_site(path: Path, lines: str) -> None:
    path.write_text(
        "hub:\n  name: Reload lines\n  web: {host: 127.0.0.1, port: 0}\n"
        "cameras: []\n"
        f"call_lines:\n{lines}"
    )


async def test_a_changed_call_line_needs_a_restart_and_the_running_ones_stay(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site.yaml"
    write_site(site, "  - {id: desk, type: test-line}\n")
    pm = make_plugin_manager(plugins=[("lines", LinePlugin())])
    hub = Hub.from_file(site, data_dir=tmp_path / "data", pm=pm)
    await hub.start()
    try:
        line = hub.call_lines["desk"]
        events: list[ConfigReloaded] = []
        hub.bus.listen(ConfigReloaded, events.append)
        write_site(
            site,
            "  - {id: desk, type: test-line, enabled: false}\n  - {id: cad, type: test-line}\n",
        )
        report = await hub.reload("test")
        assert report["ok"] is True
        assert report["diff"]["restart_required"] == ["call_lines"]
        assert "call_lines" in report["diff"]["sections"]
        # nothing changed under the desk: the same line runs, the settings are its own
        assert dict(hub.call_lines) == {"desk": line} and not line.stopped
        assert [(e.id, e.enabled) for e in hub.config.settings.call_lines] == [("desk", True)]
        await hub.bus.drain()
        assert events[-1].restart_required == ["call_lines"]
        records = await hub.store.audit_records(target=str(site))
        assert records[0].details["diff"]["restart_required"] == ["call_lines"]
    finally:
        await hub.stop()
    # the next start runs the file's lines
    pm = make_plugin_manager(plugins=[("lines", LinePlugin())])
    hub = Hub.from_file(site, data_dir=tmp_path / "data", pm=pm)
    await hub.start()
    try:
        assert list(hub.call_lines) == ["cad"]
    finally:
        await hub.stop()
