"""Reloading the site file into a running hub: all of it valid, or nothing.

The new file is read and validated off the loop; a retention policy that cannot
be built refuses the reload too, so the running policies stay. Only what
changed is applied (cameras, discovery sources, retention); sections that need
a restart keep their running value and the report says so: the web listener
and plugins (``csuhub.config.diff``), and the call lines (``call_lines:``),
whose sockets and peers' sessions a line holds from its start (the desk must
not miss a call while a line is rebuilt). Every outcome is
audited, fired on the bus and written to ``<data_dir>/reload.json`` for
``csuhub reload``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csuhub.config import ConfigInvalid, load_raw
from csuhub.config.diff import diff_config
from csuhub.config.nodes import Secret, YamlError
from csuhub.config.secrets import load_secrets
from csuhub.events import ConfigReloaded, ConfigReloadFailed
from csuhub.masks.policy import remember_site_masks
from csuhub.security.context import current_principal

if TYPE_CHECKING:
    from csuhub.hub import Hub

__all__ = ["REPORT", "Reloader", "read_secrets"]

_LOGGER = logging.getLogger(__name__)

#: the last reload's report, beside the database
REPORT = "reload.json"


class Reloader:
    """One reload at a time for one hub, numbered (``generation``)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._lock = asyncio.Lock()
        self.generation = 0

    async def reload(self, trigger: str = "api") -> dict[str, Any]:
        """Re-read the site file; apply it only if valid, and then only what changed.

        An invalid file leaves the running configuration untouched. Returns the
        report (also written to ``<data_dir>/reload.json``).
        """
        async with self._lock:
            report = await self._reload(trigger)
            self.generation += 1
            report["generation"] = self.generation
            report["trigger"] = trigger
            report["time"] = time.time()
            await asyncio.to_thread(_write_json_atomic, self.hub.data_dir / REPORT, report)
            return report

    async def _reload(self, trigger: str) -> dict[str, Any]:
        hub = self.hub
        source = hub.config.source
        if source is None:
            errors = ["this hub runs an embedded configuration; there is no file to reload"]
            hub.bus.fire(ConfigReloadFailed(trigger=trigger, errors=errors))
            return {"ok": False, "errors": errors}
        try:
            loaded = await asyncio.to_thread(load_raw, source)
            # blueprints are files too: validate off the loop
            new = await asyncio.to_thread(hub.validate, loaded.raw, str(source), loaded.files)
            # a retention policy that cannot be built refuses the reload: the running ones stay
            retention = hub.retention.build(new)
        except ConfigInvalid as err:
            errors = [str(i) for i in err.issues if i.severity == "error"]
            await _audit(hub, trigger, "config.reload_refused", str(source), errors=errors)
            hub.bus.fire(ConfigReloadFailed(trigger=trigger, errors=errors))
            return {"ok": False, "errors": errors, "issues": [i.as_dict() for i in err.issues]}
        except OSError as err:
            errors = [f"{source}: cannot read: {err.strerror or err}"]
            hub.bus.fire(ConfigReloadFailed(trigger=trigger, errors=errors))
            return {"ok": False, "errors": errors}
        hub.secrets = loaded.secrets  # before adopted cameras (re)start with them
        await hub.cameras.sync_adopted()
        old = hub.config
        diff = diff_config(old.data, new.data)
        if diff.restart_required:
            # keep what cannot change live; report it
            data = dict(new.data)
            for section in diff.restart_required:
                if section in old.data:
                    data[section] = old.data[section]
                else:
                    data.pop(section, None)
            new = dataclasses.replace(new, data=data)
            _LOGGER.warning(
                "reload: %s changed and take effect at the next restart",
                ", ".join(diff.restart_required),
            )
        hub.config = new
        if diff.cameras:
            await hub.cameras.apply(diff.cameras, new.section("cameras", []))
        if diff.discovery:
            await hub.discovery.apply(diff.discovery, new.section("discovery", []))
        if "retention" in diff.sections or diff.cameras:
            # a shorter period or a removed camera takes effect at once
            hub.retention.configure(built=retention)
            hub.retention.wake()
        await remember_site_masks(hub)  # for commands run without the site file
        await _audit(hub, trigger, "config.reload", str(source), diff=diff.as_dict())
        hub.bus.fire(
            ConfigReloaded(
                trigger=trigger,
                sections=diff.sections,
                cameras=diff.cameras.as_dict(),
                restart_required=diff.restart_required,
            )
        )
        return {"ok": True, "diff": diff.as_dict(), "warnings": [str(w) for w in new.warnings]}


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, default=str, indent=2))
    os.replace(tmp, path)


def read_secrets(source: str) -> dict[str, Secret]:
    """Blocking: ``secrets.yaml`` beside the site file ``source``, if there is one (a
    hub built from data reads it once, in a thread; a reload with the site file)."""
    if source.startswith("<"):
        return {}
    try:
        return load_secrets(Path(source))
    except (OSError, YamlError) as err:  # the message names the file, never a value
        _LOGGER.warning("secrets.yaml beside %s not read: %s", source, err)
        return {}


async def _audit(hub: Any, trigger: str, action: str, target: str, **params: Any) -> None:
    """By the request's principal when an API call asked (its role, session or
    token, address), else by the trigger (``sighup``, ``cli``)."""
    who = current_principal()
    if who is not None:
        await hub.store.audit_event(who, action, target, trigger=trigger, **params)
    else:
        await hub.store.audit(trigger, action, target, **params)
