"""Replacing ``use_blueprint`` instances in a site by what their blueprints produce.

An instance may stand wherever a section (or an item of a list section) is
expected, any number of times::

    cameras:
      - use_blueprint:
          path: camera/onvif_camera.yaml
          input: {id: cam-grand-place, host: 10.0.0.12, ...}
        name: Grand Place (north)     # instance keys override the blueprint

The place decides the expected domain; a blueprint of another domain is an
error. The whole file may also be one ``site`` blueprint instance, whose other
top-level keys override the sections it produces. Cameras are expanded first
so that ``camera`` selectors elsewhere can check against the real camera list.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from csuhub.blueprint.loader import BlueprintLoader, BlueprintNotFound
from csuhub.blueprint.models import BlueprintError
from csuhub.blueprint.selectors import SelectorContext
from csuhub.config.issues import ConfigIssue
from csuhub.config.nodes import Mark, NodeDict, NodeList, position_of

KEY = "use_blueprint"

#: section -> (domain of its blueprints, whether the section is a list of items)
SECTION_DOMAINS: dict[str, tuple[str, bool]] = {
    "cameras": ("camera", True),
    "discovery": ("discovery", True),
    "walls": ("wall", True),
    "call_lines": ("call_line", True),
    "retention": ("retention", False),
    "recording": ("recording", False),
}

USE_SCHEMA = vol.Schema(
    {vol.Required("path"): str, vol.Optional("input", default={}): vol.Any(dict, None)}
)


class Expander:
    def __init__(self, loader: BlueprintLoader, districts: list[str]) -> None:
        self.loader = loader
        self.districts = tuple(districts)
        self.issues: list[ConfigIssue] = []
        #: blueprints used, for reload change detection and `csuhub check --json`
        self.used: dict[str, str] = {}

    def expand_site(self, raw: Any, file: str) -> Any:
        """Return ``raw`` with every instance expanded; problems go to ``self.issues``."""
        self.root = raw
        self.file = file
        if isinstance(raw, dict) and KEY in raw:
            produced = self._instance(raw, (), "site", SelectorContext(cameras_known=False))
            if produced is None:
                return {k: v for k, v in raw.items() if k != KEY}
            if not isinstance(produced, dict):
                self._error("a site blueprint must produce a mapping of sections", ())
                return {}
            merged = NodeDict(produced)
            if isinstance(produced, NodeDict):
                merged.mark, merged.key_marks = produced.mark, dict(produced.key_marks)
            for key, value in raw.items():
                if key != KEY:
                    merged[key] = value  # the instance overrides the blueprint's sections
                    if isinstance(raw, NodeDict) and key in raw.key_marks:
                        merged.key_marks[key] = raw.key_marks[key]
            raw = merged
        if not isinstance(raw, dict):
            return raw
        out = NodeDict(raw)
        if isinstance(raw, NodeDict):
            out.mark, out.key_marks = raw.mark, dict(raw.key_marks)
        # cameras first: later selectors check against them
        order = ["cameras", *[s for s in SECTION_DOMAINS if s != "cameras"]]
        context = SelectorContext(cameras_known=False, districts=self._districts(raw))
        for section in order:
            if section not in out:
                continue
            if section != "cameras" and context.cameras_known is False:
                context = SelectorContext(
                    cameras=frozenset(_camera_ids(out.get("cameras"))),
                    districts=context.districts,
                    cameras_known=True,
                )
            out[section] = self._section(out[section], section, context)
        return out

    def _districts(self, raw: Any) -> tuple[str, ...]:
        hub = raw.get("hub") if isinstance(raw, dict) else None
        districts = hub.get("districts") if isinstance(hub, dict) else None
        if isinstance(districts, list) and all(isinstance(d, str) for d in districts):
            return tuple(districts)
        return self.districts

    def _section(self, value: Any, section: str, context: SelectorContext) -> Any:
        domain, is_list = SECTION_DOMAINS[section]
        path: tuple[Any, ...] = (section,)
        if isinstance(value, dict) and KEY in value:
            produced = self._instance(value, path, domain, context)
            if is_list and isinstance(produced, list):
                return produced
            return [produced] if is_list and produced is not None else produced
        if not (is_list and isinstance(value, list)):
            return value
        items = NodeList()
        if isinstance(value, NodeList):
            items.mark = value.mark
        for index, item in enumerate(value):
            mark = value.item_marks[index] if isinstance(value, NodeList) else None
            if isinstance(item, dict) and KEY in item:
                produced = self._instance(item, (*path, index), domain, context)
                if produced is None:
                    continue
                # a blueprint may produce one item or several
                for one in produced if isinstance(produced, list) else [produced]:
                    items.append(one)
                    items.item_marks.append(
                        getattr(one, "mark", None) or mark or Mark(self.file, 1, 1)
                    )
            else:
                items.append(item)
                items.item_marks.append(mark or Mark(self.file, 1, 1))
        return items

    def _instance(
        self, node: dict[str, Any], path: tuple[Any, ...], domain: str, context: SelectorContext
    ) -> Any:
        use_path = (*path, KEY)
        try:
            use = USE_SCHEMA(node[KEY])
        except vol.MultipleInvalid as err:
            for e in err.errors:
                msg = "unknown key" if e.msg == "extra keys not allowed" else e.msg
                if e.msg == "required key not provided":
                    msg = f"required key {e.path[-1]!r} is missing"
                self._error(msg, (*use_path, *e.path))
            return None
        except vol.Invalid as err:
            self._error(f"use_blueprint must be a mapping with path and input: {err.msg}", use_path)
            return None
        try:
            blueprint = self.loader.load(use["path"])
        except BlueprintNotFound as err:
            self._error(str(err), (*use_path, "path"))
            return None
        except BlueprintError as err:
            self.issues.extend(err.issues)
            return None
        self.used[use["path"]] = blueprint.path
        if blueprint.domain != domain:
            self._error(
                f"blueprint {blueprint.name!r} has domain {blueprint.domain!r} but is used "
                f"where a {domain!r} is expected",
                (*use_path, "path"),
            )
            return None
        try:
            produced = blueprint.instantiate(
                use["input"],
                context,
                where=(*use_path, "input"),
                root=self.root,
                fallback=position_of(self.root, list(use_path)),
            )
        except BlueprintError as err:
            self.issues.extend(err.issues)
            return None
        instance_mark = node.mark if isinstance(node, NodeDict) else None
        if instance_mark is None and path:
            instance_mark = position_of(self.root, list(path))
        if isinstance(produced, NodeDict):
            produced.origin = instance_mark
        overrides = {k: v for k, v in node.items() if k != KEY}
        if overrides:
            if not isinstance(produced, dict):
                self._error("instance keys can override only a blueprint producing a mapping", path)
                return produced
            merged = NodeDict(produced)
            if isinstance(produced, NodeDict):
                merged.mark, merged.key_marks = produced.mark, dict(produced.key_marks)
            merged.origin = instance_mark
            for key, value in overrides.items():
                merged[key] = value
                if isinstance(node, NodeDict) and key in node.key_marks:
                    merged.key_marks[key] = node.key_marks[key]
            produced = merged
        return produced

    def _error(self, message: str, path: tuple[Any, ...]) -> None:
        mark = position_of(self.root, list(path)) or Mark(self.file, 1, 1)
        self.issues.append(ConfigIssue(message, path, mark))


def _camera_ids(cameras: Any) -> list[str]:
    if not isinstance(cameras, list):
        return []
    return [str(c["id"]) for c in cameras if isinstance(c, dict) and isinstance(c.get("id"), str)]
