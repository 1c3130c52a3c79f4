"""The site's secrets: ``secrets.yaml`` beside the site file, as ``Secret`` values.

Read with the site file (``load_raw``) and again on its own (``load_secrets``)
when the hub needs a secret by name. Both are blocking file I/O: call them
before the event loop runs or in a thread, once per load or reload, never per
request. A ``Secret`` is a ``str`` whose repr shows its name, never its value;
no error message ever contains a value.
"""

from __future__ import annotations

from pathlib import Path

from csuhub.config.nodes import Secret, make_secret
from csuhub.config.yaml_loader import LoadContext, read_secrets_file

__all__ = ["Secret", "load_secrets", "make_secret", "site_secrets"]


def load_secrets(site: Path) -> dict[str, Secret]:
    """The ``secrets.yaml`` beside ``site`` (empty when there is none). Raises
    ``YamlError`` (no value is ever in its message) or ``OSError``. Blocking."""
    return site_secrets(site, LoadContext())


def site_secrets(site: Path, context: LoadContext) -> dict[str, Secret]:
    """The secrets beside ``site``, read through ``context``'s cache, so that a
    ``secrets.yaml`` the site file's ``!secret`` tags already read is not read
    twice. Values that are not scalars are left out (the ``!secret`` tag reports
    them where they are used)."""
    data = read_secrets_file(site.resolve().parent / "secrets.yaml", context)
    return {
        str(name): make_secret(str(name), value)
        for name, value in (data or {}).items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    }
