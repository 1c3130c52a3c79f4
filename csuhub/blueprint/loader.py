"""Finding, loading and caching blueprints.

A ``use_blueprint.path`` is relative to a blueprints directory: first the
site's own (``blueprints/`` beside the site file), then the ones shipped with
csuhub. Paths are validated against those roots: no absolute paths, no
``..`` escaping. Loaded blueprints are cached by path, modification time and
size, so a reload re-reads only what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from csuhub.blueprint.models import Blueprint, BlueprintError
from csuhub.config.issues import ConfigIssue
from csuhub.config.yaml_loader import LoadContext, YamlError, load_file


def bundled_blueprints_dir() -> Path:
    """The shipped blueprints: package data in a wheel, the top-level folder in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "blueprints", package.parent / "blueprints"):
        if candidate.is_dir():
            return candidate
    return package / "blueprints"


class BlueprintNotFound(Exception):
    pass


@dataclass(frozen=True)
class _CacheKey:
    path: Path
    mtime_ns: int
    size: int


class BlueprintLoader:
    def __init__(self, search_dirs: list[Path] | None = None) -> None:
        self.search_dirs = [d.resolve() for d in (search_dirs or [])]
        bundled = bundled_blueprints_dir().resolve()
        if bundled not in self.search_dirs:
            self.search_dirs.append(bundled)
        self._cache: dict[Path, tuple[_CacheKey, Blueprint]] = {}

    @classmethod
    def for_site(cls, site_file: Path | None) -> BlueprintLoader:
        dirs = [site_file.resolve().parent / "blueprints"] if site_file is not None else []
        return cls(dirs)

    def resolve(self, ref: str) -> Path:
        pure = PurePosixPath(ref)
        if pure.is_absolute() or ".." in pure.parts or not ref.strip():
            raise BlueprintNotFound(
                f"blueprint path {ref!r} must be relative to a blueprints folder, without '..'"
            )
        if pure.suffix not in (".yaml", ".yml"):
            raise BlueprintNotFound(f"blueprint path {ref!r} must end in .yaml")
        for root in self.search_dirs:
            candidate = (root / pure).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                return candidate
        searched = ", ".join(str(d) for d in self.search_dirs)
        raise BlueprintNotFound(f"no blueprint {ref!r} (searched {searched})")

    def load(self, ref: str) -> Blueprint:
        """Resolve and load; raises ``BlueprintNotFound`` or ``BlueprintError``."""
        return self.load_path(self.resolve(ref))

    def load_path(self, path: Path) -> Blueprint:
        stat = path.stat()
        key = _CacheKey(path, stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            data = load_file(path, LoadContext(root=path.parent, allow_input=True))
        except YamlError as err:
            raise BlueprintError([ConfigIssue(err.message, (), err.mark)]) from None
        blueprint = Blueprint(data, str(path))
        self._cache[path] = (key, blueprint)
        return blueprint

    def list(self) -> list[tuple[str, Path, Blueprint | BlueprintError]]:
        """Every blueprint in the search folders, as ``(ref, path, blueprint or error)``."""
        seen: set[str] = set()
        out: list[tuple[str, Path, Blueprint | BlueprintError]] = []
        for root in self.search_dirs:
            if not root.is_dir():
                continue
            for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
                ref = path.relative_to(root).as_posix()
                if ref in seen:
                    continue  # shadowed by the site's own
                seen.add(ref)
                try:
                    out.append((ref, path, self.load_path(path)))
                except BlueprintError as err:
                    out.append((ref, path, err))
        return out
