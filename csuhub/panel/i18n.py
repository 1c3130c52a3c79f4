"""The panel's languages: French by default, English available.

Messages are written in English in the templates and modules (``_("Cameras")``)
and translated by gettext catalogues, one ``.po`` per page area under
``locale/<lang>/LC_MESSAGES/`` so that areas are written and reviewed apart.
``scripts/install.sh`` compiles them to ``.mo`` with babel
(``python -m csuhub.panel.i18n compile``); a checkout that skipped the step
still works, since a missing or older ``.mo`` is compiled in memory from its
``.po`` at first use. English needs no catalogue: the messages are English.

Why a cookie and not only ``Accept-Language``: a control-room workstation is
shared by several people and its browser's language is the city's IT choice;
each operator picks theirs once (the switch in the top bar, ``?lang=``) and
keeps it.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_ROOT = Path(__file__).resolve().parent / "locale"
LANGS = ("fr", "en")
DEFAULT_LANG = "fr"
#: the cookie that keeps a browser's chosen language (not a secret, not a session)
LANG_COOKIE = "csuhub_lang"
#: the babel locale of each language (dates, numbers)
LOCALES = {"fr": "fr_FR", "en": "en_GB"}


def catalogues(lang: str) -> list[Path]:
    """The ``.po`` files of ``lang``, one per page area, in a stable order."""
    folder = LOCALE_ROOT / lang / "LC_MESSAGES"
    return sorted(folder.glob("*.po")) if folder.is_dir() else []


def _compiled(po: Path) -> bytes:
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=po.parent.parent.name)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def compile_all(langs: Iterable[str] = LANGS) -> list[Path]:
    """Write each ``.po``'s ``.mo`` beside it (the install step); the ``.mo`` paths."""
    written = []
    for lang in langs:
        for po in catalogues(lang):
            mo = po.with_suffix(".mo")
            mo.write_bytes(_compiled(po))
            written.append(mo)
    return written


def _load(po: Path) -> Translations:
    mo = po.with_suffix(".mo")
    if mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime:
        data = mo.read_bytes()
    else:  # not compiled (or edited since): compile in memory, the same way
        data = _compiled(po)
    return Translations(io.BytesIO(data), domain="csuhub")


@functools.cache
def translations(lang: str) -> NullTranslations:
    """All of ``lang``'s area catalogues merged into one (English: none)."""
    merged: NullTranslations | None = None
    for po in catalogues(lang):
        loaded = _load(po)
        if merged is None:
            merged = loaded
        else:
            merged.merge(loaded)  # type: ignore[attr-defined]
    return merged if merged is not None else NullTranslations()


def negotiate(request: web.Request, default: str = DEFAULT_LANG) -> str:
    """``?lang=``, else the cookie, else ``Accept-Language``, else ``default``."""
    asked = request.query.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    if kept in LANGS:
        return kept
    for lang, _quality in _accepted(request.headers.get("Accept-Language", "")):
        if lang in LANGS:
            return lang
    return default


def _accepted(header: str) -> list[tuple[str, float]]:
    """``Accept-Language``'s primary tags by quality (bad parts are skipped)."""
    found = []
    for part in header[:500].split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].lower()
        if primary:
            found.append((primary, quality))
    return sorted(found, key=lambda item: -item[1])


#: where the panel's messages are: its modules (``_("...")``) and templates
_METHODS = [("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")]
_OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def extract() -> dict[str, list[str]]:
    """Every msgid of the panel's code and templates -> where it is used."""
    from babel.messages.extract import extract_from_dir

    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(LOCALE_ROOT.parent),
        method_map=_METHODS,
        options_map=_OPTIONS,
        keywords={"_": None, "gettext": None, "ngettext": (1, 2)},
    ):
        msgids = message if isinstance(message, tuple) else (message,)
        for msgid in msgids:
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def translated(lang: str) -> dict[str, str]:
    """``lang``'s msgid -> msgstr over all its catalogues (fuzzy ones left out)."""
    merged: dict[str, str] = {}
    for po in catalogues(lang):
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            if isinstance(message.id, str):
                merged[message.id] = message.string
            else:  # a plural: its singular and plural forms, each with its own string
                strings = tuple(message.string) or ("",)
                for index, msgid in enumerate(message.id):
                    merged[msgid] = strings[min(index, len(strings) - 1)] if all(strings) else ""
    return merged


def missing(lang: str = DEFAULT_LANG) -> dict[str, list[str]]:
    """The msgids used but not (or emptily) translated in ``lang``."""
    done = {k for k, v in translated(lang).items() if v}
    return {k: v for k, v in extract().items() if k not in done}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m csuhub.panel.i18n")
    parser.add_argument("command", choices=["compile", "missing"])
    command = parser.parse_args(argv).command
    if command == "missing":  # po-ready entries to paste into an area's catalogue
        for msgid, where in sorted(missing().items()):
            print(f'#: {" ".join(where)}\nmsgid {_po_quote(msgid)}\nmsgstr ""\n')
        return 0
    written = compile_all()
    print(f"compiled {len(written)} catalogue(s) under {LOCALE_ROOT}")
    return 0


def _po_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


if __name__ == "__main__":
    sys.exit(main())
