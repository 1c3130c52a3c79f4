"""Rules that span sections: the law, references between sections, plugins.

Run on validated data; positions come from the loaded (expanded) YAML. A list
section with bad entries (``cameras``, ``discovery``, ``call_lines``, ``walls``)
is still checked entry by entry: its good entries come as ``partial``, so one
camera with a bad id does not hide another's driver options or missing
authorisation. Legal
and referential problems are errors. References to components that no loaded
plugin provides are warnings (the site may be prepared before the plugin is
installed; ``csuhub check --strict`` makes them errors), and so are
authorisations that have expired or expire soon.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from csuhub.config import validators as cv
from csuhub.config.components import COMPONENT_REFERENCES, ComponentRef, Path
from csuhub.config.explain import issues_from_invalid
from csuhub.config.issues import ERROR, WARNING, ConfigIssue
from csuhub.config.nodes import Mark, origin_of, position_of
from csuhub.config.schema import JURISDICTION_LAW, JURISDICTION_RETENTION_CAP_DAYS
from csuhub.walls.model import RULE_KEYS, rules_of

if TYPE_CHECKING:
    from csuhub.registry import Registry

DAY = 86400.0
#: Warn this many days before a prefectoral authorisation expires.
AUTHORIZATION_WARNING_DAYS = 30


def format_duration(seconds: float) -> str:
    for unit, size in (("d", DAY), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _close(value: str, choices: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(value, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else None


class Checker:
    def __init__(
        self,
        data: dict[str, Any],
        root: Any,
        file: str,
        registry: Registry | None,
        today: dt.date | None = None,
        *,
        partial: dict[str, list[Any]] | None = None,
    ) -> None:
        #: validated sections, plus the failed list sections' good entries (None
        #: in place of each bad one, so that indexes still match the file)
        self.partial = dict(partial or {})
        self.data = {**data, **self.partial}
        self.root = root
        self.file = file
        self.registry = registry
        self.today = today or dt.date.today()
        self.issues: list[ConfigIssue] = []

    def _add(
        self,
        message: str,
        path: tuple[Any, ...],
        *,
        hint: str | None = None,
        severity: str = ERROR,
        key: bool = False,
    ) -> None:
        mark = position_of(self.root, list(path), key=key) or Mark(self.file, 1, 1)
        via = origin_of(self.root, list(path))
        self.issues.append(ConfigIssue(message, path, mark, hint, severity, via))

    def run(self, failed: set[str] = frozenset()) -> list[ConfigIssue]:  # type: ignore[assignment]
        """Each rule runs when the sections it reads validated, so a bad
        section elsewhere does not hide a legal problem."""

        def ok(*sections: str) -> bool:
            return not (failed - set(self.partial)) & set(sections)

        if ok("retention"):
            self.retention()
        if ok("cameras"):
            self.cameras(check_districts=ok("hub"), check_minimum=ok("retention"))
        if ok("cameras", "walls"):
            self.walls()
        if self.registry is not None:
            self.components(failed - set(self.partial))
        return self.issues

    def entries(self, section: str) -> Iterable[tuple[int, dict[str, Any]]]:
        """``(index, entry)`` for each entry of a list section that validated."""
        for index, entry in enumerate(self.data.get(section) or []):
            if entry is not None:
                yield index, entry

    # -- the law -------------------------------------------------------------

    def cap(self) -> tuple[float, str]:
        # an invalid hub section must not hide a legal problem: fall back to the default
        jurisdiction = self.data.get("hub", {}).get("jurisdiction", "fr")
        return JURISDICTION_RETENTION_CAP_DAYS[jurisdiction] * DAY, JURISDICTION_LAW[jurisdiction]

    def _over_cap(self, seconds: float, path: tuple[Any, ...], what: str = "retention") -> None:
        cap, law = self.cap()
        if seconds > cap:
            self._add(
                f"{what} {format_duration(seconds)} exceeds the legal maximum of "
                f"{format_duration(cap).rstrip('d')} days ({law})",
                path,
                hint=f"use at most {format_duration(cap)}; footage needed longer must be "
                "held by a requisition",
            )

    def retention(self) -> None:
        retention = self.data.get("retention")
        if not retention:
            return
        self._over_cap(retention["default"], ("retention", "default"))
        for index, policy in enumerate(retention["policies"]):
            max_age = policy["options"].get("max_age")
            if max_age is None:
                continue
            try:
                seconds = cv.duration(max_age)
            except vol.Invalid:
                continue  # the policy's own schema reports the bad value
            self._over_cap(seconds, ("retention", "policies", index, "options", "max_age"))

    def cameras(self, check_districts: bool = True, check_minimum: bool = True) -> None:
        districts = self.data["hub"]["districts"] if check_districts else []
        # without a valid retention section the default is unknown: skip that comparison
        default = (self.data.get("retention") or {}).get("default", 14 * DAY)
        for index, camera in self.entries("cameras"):
            base = ("cameras", index)
            if "retention" in camera:
                self._over_cap(camera["retention"], (*base, "retention"))
            auth = camera.get("authorization")
            if auth is None:
                if camera["enabled"]:
                    self._add(
                        "no prefectoral authorisation: this camera will not be recorded",
                        base,
                        severity=WARNING,
                        hint="add authorization: {reference, issued, expires}",
                    )
            else:
                self._authorization(camera, auth, base, default if check_minimum else None)
            location = camera.get("location")
            if (
                check_districts
                and location
                and "district" in location
                and location["district"] not in districts
            ):
                self._add(
                    f"{location['district']!r} is not a district of this site",
                    (*base, "location", "district"),
                    hint=_close(location["district"], districts)
                    or "districts are listed in hub.districts",
                )

    def _authorization(
        self,
        camera: dict[str, Any],
        auth: dict[str, Any],
        base: tuple[Any, ...],
        default: float | None,
    ) -> None:
        path = (*base, "authorization")
        if auth["expires"] <= auth["issued"]:
            self._add("expires must be after issued", (*path, "expires"))
            return
        if auth["expires"] < self.today:
            self._add(
                f"authorisation {auth['reference']} expired on {auth['expires']}: "
                "the camera will not be recorded",
                (*path, "expires"),
                severity=WARNING,
            )
        elif (auth["expires"] - self.today).days <= AUTHORIZATION_WARNING_DAYS:
            self._add(
                f"authorisation {auth['reference']} expires on {auth['expires']} "
                f"(in {(auth['expires'] - self.today).days} days)",
                (*path, "expires"),
                severity=WARNING,
                hint="ask the prefecture for a renewal",
            )
        minimum = auth.get("min_retention")
        if minimum is not None:
            self._over_cap(minimum, (*path, "min_retention"), what="authorised retention")
            effective = camera.get("retention", default)
            if effective is not None and effective < minimum:
                self._add(
                    f"retention {format_duration(effective)} is shorter than the "
                    f"{format_duration(minimum)} the authorisation sets",
                    (*base, "retention") if "retention" in camera else path,
                )

    # -- references ------------------------------------------------------------

    def walls(self) -> None:
        """Each screen's cameras exist (a ``group:``/``district:`` selector names a
        group or district some camera of the site has), and its rule options
        (spotlight, hold, timeout, radius_m, min_priority, categories) are valid."""
        entries = list(self.entries("cameras"))
        cameras = {c["id"] for _, c in entries}
        if "cameras" in self.partial:  # a camera that failed its schema is its own problem
            cameras |= _written_ids(self.root, "cameras")
        groups = {g.casefold() for _, c in entries for g in c.get("groups") or ()}
        districts = {
            (c.get("location") or {}).get("district", "").casefold() for _, c in entries
        } - {""}
        for w, wall in self.entries("walls"):
            for s, screen in enumerate(wall["screens"]):
                base = ("walls", w, "screens", s)
                for c, camera in enumerate(screen["cameras"]):
                    kind, _, name = camera.partition(":")
                    if name and kind in ("group", "district"):
                        known = groups if kind == "group" else districts
                        if name.casefold() not in known:
                            self._add(
                                f"no camera of this site is in {kind} {name!r}",
                                (*base, "cameras", c),
                            )
                    elif camera not in cameras:
                        self._add(
                            f"no camera {camera!r} in this site",
                            (*base, "cameras", c),
                            hint=_close(camera, cameras),
                        )
                try:
                    rules_of(screen["layout"], screen.get("options") or {})
                except ValueError as err:
                    key = str(err).partition(":")[0].removeprefix("options.")
                    path = (*base, "options", key) if key in RULE_KEYS else (*base, "options")
                    self._add(str(err), path)

    def components(self, failed: set[str]) -> None:
        """Each component the site names (driver, source, backend, policy, call line,
        layout): is it provided, and do its options pass the plugin's own schema?

        A name no loaded plugin provides is a warning (the site may be written
        before the plugin is installed), except where running without it is
        unsafe (retention policies). Options that the plugin refuses are errors:
        the component could not be built, so the hub must not start with them.
        """
        assert self.registry is not None
        written = set(self.root) if isinstance(self.root, dict) else set()
        for ref in COMPONENT_REFERENCES:
            section = ref.section
            if section not in written or section in failed or section not in self.data:
                continue
            specs = getattr(self.registry, ref.registry)
            for path, entry in ref.entries(self.data):
                name = entry[ref.name_key]
                spec = specs.get(name)
                if spec is None:
                    self._missing(ref, name, specs.names(), (*path, ref.name_key))
                    continue
                self._options(ref, name, spec.config_schema, ref.options(entry), path)

    def _missing(self, ref: ComponentRef, name: str, names: list[str], path: Path) -> None:
        hint = _close(name, names) or (
            f"available: {', '.join(names)}" if names else "see `csuhub plugins`"
        )
        if ref.required:
            self._add(
                f"no loaded plugin provides {ref.what} {name!r}: the hub will not start without it",
                path,
                hint=hint,
            )
        else:
            self._add(
                f"no loaded plugin provides {ref.what} {name!r}",
                path,
                severity=WARNING,
                hint=hint,
            )

    def _options(
        self, ref: ComponentRef, name: str, schema: Any, options: dict[str, Any], path: Path
    ) -> None:
        where = (*path, "options")
        try:
            schema(options)
        except vol.Invalid as err:
            for issue in issues_from_invalid(self.root, err, where, schema, self.file):
                self.issues.append(
                    dataclasses.replace(issue, message=f"{ref.what} {name!r}: {issue.message}")
                )
        except Exception as err:  # a plugin's schema is plugin code: fail closed, no traceback
            self._add(
                f"{ref.what} {name!r} could not check its options ({type(err).__name__}: {err})",
                where,
                hint="a bug in the plugin's config_schema; report it to its authors",
            )


def _written_ids(root: Any, section: str) -> set[str]:
    """The ``id`` each entry of ``section`` was written with, valid or not."""
    items = root.get(section) if isinstance(root, dict) else None
    return {
        str(item["id"])
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("id"), str | int)
    }
