"""Bundled retention policies: ``max_age``, ``storage_pressure``, ``incident_preservation``.

They register through the ``register_retention_policies`` hook like any
third-party policy. None of them deletes anything: each returns ``Expiry``
verdicts (or places holds), and the core sweeper acts, holds first. The legal
cap is enforced by the sweeper itself, so removing these plugins can never
make the hub keep footage too long.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from csuhub.api import (
    FOREVER,
    Expiry,
    RetentionPolicySpec,
    SweepContext,
    cv,
    hookimpl,
    policy_store,
)


class MaxAge:
    """Each camera's footage goes after its retention period (the camera's own, else
    this policy's ``max_age``, else the site default), never later than the cap."""

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.hub = hub
        self.max_age: float | None = options.get("max_age")

    async def plan(self, sweep: SweepContext) -> list[Expiry]:
        configured = {c["id"]: c for c in sweep.hub.config.section("cameras", []) or []}
        verdicts = []
        for camera_id in sorted(set(sweep.cameras) | sweep.recorded):
            rules = sweep.retention_of(camera_id)
            own = "retention" in configured.get(camera_id, {})
            period = rules.retention if own or self.max_age is None else self.max_age
            if rules.minimum is not None:
                period = max(period, rules.minimum)
            period = min(period, sweep.cap)
            verdicts.append(
                Expiry(camera_id, sweep.now - period, "max_age", f"older than {period:g}s")
            )
        return verdicts


class StoragePressure:
    """Keep free space above ``min_free_percent`` by taking the oldest unheld footage
    first, up to ``target_free_percent``; alarm before acting.

    It respects each camera's authorised minimum; if that is not enough it raises
    ``below_minimum``, and only goes below the minimums when free space is under
    ``critical_free_percent`` (recording would stop for every camera otherwise).
    """

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.hub = hub
        self.min_free = float(options["min_free_percent"])
        self.target = float(options.get("target_free_percent") or self.min_free + 5)
        self.critical = float(options["critical_free_percent"])

    async def plan(self, sweep: SweepContext) -> list[Expiry]:
        total, free = sweep.disk()
        if total <= 0 or 100.0 * free / total >= self.min_free:
            return []
        need = int(total * self.target / 100.0) - free
        sweep.alarm(
            None,
            "storage_pressure",
            f"free space {100.0 * free / total:.1f} % is under {self.min_free:g} %: destroying "
            f"the oldest unheld footage to free {need} bytes",
        )
        cutoffs = {
            camera_id: sweep.now - (rules.minimum or 0.0)
            for camera_id, rules in sweep.cameras.items()
        }
        store = policy_store(sweep)
        befores, found = await store.oldest_unheld(need, cutoffs, sweep.now)
        reason = "storage pressure"
        below_minimum = False
        if found < need:
            sweep.alarm(
                None,
                "below_minimum",
                f"freeing {need} bytes would take footage younger than the authorised "
                f"minimum retention (only {found} bytes are older)",
            )
            if 100.0 * free / total < self.critical:
                befores, found = await store.oldest_unheld(need, {}, sweep.now)
                reason = "storage pressure, critical: below authorised minimums"
                below_minimum = True
        return [
            Expiry(camera_id, before, "storage_pressure", reason, below_minimum)
            for camera_id, before in sorted(befores.items())
        ]


class IncidentPreservation:
    """Footage of an open incident's cameras over its window is held (preservation
    level: never past the legal cap) until the incident is closed. Holds go through
    ``policy_store``, which allows a policy nothing stronger than preservation.

    The incident desk places and releases the same holds itself (an incident's
    cameras are held when they are linked); this policy repairs what went
    missing. ``enabled: false`` turns the repair off and nothing else: the
    policy then touches no hold, since releasing them would undo the desk's."""

    KIND = "incident"

    def __init__(self, hub: Any, options: dict[str, Any]) -> None:
        self.hub = hub
        self.enabled = bool(options["enabled"])
        self.margin = float(options["margin"])

    async def plan(self, sweep: SweepContext) -> list[Expiry]:
        if not self.enabled:
            return []
        # in a dry run the facade simulates these holds in memory and writes nothing
        store = policy_store(sweep)
        held = {h.ref for h in await store.holds(self.KIND)}
        wanted = {str(i.id): i for i in await store.incidents() if i.is_open}
        for ref in held - set(wanted):
            await store.release_holds(self.KIND, ref, "incident_preservation")
        for ref, incident in wanted.items():
            if ref in held:
                continue
            end = incident.end + self.margin if incident.end is not None else FOREVER
            await store.place_hold(
                incident.cameras,
                incident.start - self.margin,
                end,
                kind=self.KIND,
                ref=ref,
                reason=f"incident {incident.reference}",
                actor="incident_preservation",
            )
        return []


def _positive(seconds: float) -> float:
    """A ``max_age`` of 0 would destroy each segment as soon as it is indexed."""
    if seconds <= 0:
        raise vol.Invalid("max_age must be longer than 0 (0 would destroy all footage at once)")
    return seconds


def _ordered_thresholds(options: dict[str, Any]) -> dict[str, Any]:
    """Thresholds out of order make the policy never act, or act at every sweep;
    refused when the site is checked rather than discovered on a full disk."""
    low, critical = options["min_free_percent"], options["critical_free_percent"]
    target = options.get("target_free_percent")
    if target is not None and target <= low:
        raise vol.Invalid(
            f"target_free_percent ({target:g}) must be above min_free_percent ({low:g})",
            path=["target_free_percent"],
        )
    if critical >= low:
        raise vol.Invalid(
            f"critical_free_percent ({critical:g}) must be below min_free_percent ({low:g})",
            path=["critical_free_percent"],
        )
    return options


@hookimpl
def register_retention_policies(hub: Any) -> list[RetentionPolicySpec]:
    return [
        RetentionPolicySpec(
            name="max_age",
            factory=MaxAge,
            config_schema=vol.Schema({vol.Optional("max_age"): vol.All(cv.duration, _positive)}),
            description="destroy footage older than the camera's retention period",
        ),
        RetentionPolicySpec(
            name="storage_pressure",
            factory=StoragePressure,
            config_schema=vol.All(
                vol.Schema(
                    {
                        vol.Optional("min_free_percent", default=10): vol.All(
                            vol.Coerce(float), vol.Range(min=0.5, max=90)
                        ),
                        vol.Optional("target_free_percent"): vol.All(
                            vol.Coerce(float), vol.Range(min=0.5, max=95)
                        ),
                        vol.Optional("critical_free_percent", default=2): vol.All(
                            vol.Coerce(float), vol.Range(min=0, max=50)
                        ),
                    }
                ),
                _ordered_thresholds,
            ),
            description="free disk space by destroying the oldest unheld footage first",
        ),
        RetentionPolicySpec(
            name="incident_preservation",
            factory=IncidentPreservation,
            config_schema=vol.Schema(
                {
                    vol.Optional("enabled", default=True): bool,
                    vol.Optional("margin", default=0.0): cv.duration,
                }
            ),
            description="hold the footage of open incidents until they are closed",
        ),
    ]
