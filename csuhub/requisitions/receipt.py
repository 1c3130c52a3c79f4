"""The handover receipt (procès-verbal de remise): one printable A4 page, signed
by hand by the operator and the officer.

The page is ``receipt.html``, a :class:`string.Template` shipped as package
data. Every value from the register or the operator is escaped on its way in
(:func:`_fill` escapes all text; only the rows and lists built here from
escaped parts go in as markup), so a reference or a reason cannot inject HTML.
"""

from __future__ import annotations

import html
import time
from functools import cache
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any

from csuhub.recording.signing import fingerprint, load_or_create
from csuhub.requisitions.model import LEGAL_FRAMES
from csuhub.timeutil import iso_or_blank

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from csuhub.services import HubServices


@cache
def _template() -> Template:
    text = resources.files(__package__).joinpath("receipt.html").read_text("utf-8")
    return Template(text)


def _fill(text: dict[str, str], markup: dict[str, str]) -> str:
    """The page with ``text`` escaped and ``markup`` (already escaped parts) as is;
    a placeholder left unfilled raises (``substitute``), never prints ``$name``."""
    return _template().substitute({k: html.escape(v) for k, v in text.items()}, **markup)


def render_receipt(
    hub: HubServices,
    req: dict[str, Any],
    files: list[dict[str, Any]],
    skipped: dict[str, str],
    actor: str,
    *,
    hub_name: str | None = None,
    key: Ed25519PrivateKey | None = None,
) -> str:
    """The receipt of one export. It prints the signing key's fingerprint: the
    channel by which the court learns which key to trust, outside the packages."""
    tz = hub.config.settings.hub.timezone
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(f['camera_id'])}</td><td>{e(iso_or_blank(f['from'], tz))}</td>"
        f"<td>{e(iso_or_blank(f['to'], tz))}</td><td>{f['seconds']:.0f}&nbsp;s</td>"
        f"<td>{e(f['file'])}</td><td class=h>{e(f['sha256'])}</td></tr>"
        for f in files
    )
    missing = "".join(f"<li>{e(camera)} : {e(why)}</li>" for camera, why in sorted(skipped.items()))
    masks = "".join(f"<li>{e(f['camera_id'])} : {e(_masking(f))}</li>" for f in files)
    scope_notes = ""
    for camera_id, entry in sorted((req.get("scope") or {}).items()):
        for piece in entry.get("missing", []):
            why = "détruit" if piece["why"] == "destroyed" else "non enregistré"
            detail = piece.get("policy") or piece.get("reason") or ""
            scope_notes += (
                f"<li>{e(camera_id)} : {e(iso_or_blank(piece['from'], tz))} → "
                f"{e(iso_or_blank(piece['to'], tz))} — {why} ({e(str(detail))})</li>"
            )
    return _fill(
        {
            "hub": hub_name or hub.name,
            "reference": req["reference"],
            "service": req["service"],
            "officer": req["officer"],
            "frame": LEGAL_FRAMES.get(req["legal_frame"], req["legal_frame"]),
            "reason": req["reason"],
            "start": iso_or_blank(req["start"], tz),
            "end": iso_or_blank(req["end"], tz),
            "actor": actor,
            "now": iso_or_blank(time.time(), tz),
            "fingerprint": _signer(hub, key),
        },
        {
            "rows": rows,
            "masks": (
                f"<h2>Masques de confidentialité (CSI L251-3)</h2><ul>{masks}</ul>"
                if any(f.get("masks") for f in files)
                else ""
            ),
            "missing": f"<h2>Sans extrait</h2><ul>{missing}</ul>" if missing else "",
            "scope": (
                f"<h2>Périmètre non disponible</h2><ul>{scope_notes}</ul>" if scope_notes else ""
            ),
        },
    )


def _masking(file: dict[str, Any]) -> str:
    """How an extract was masked: applied, or lifted (by which approved lift)."""
    names = ", ".join(file.get("masks") or [])
    lift = file.get("lift")
    if lift:
        return (
            f"masques levés ({names}) : levée n° {lift['id']}, demandée par "
            f"{lift['requested_by']}, approuvée par {lift['decided_by']}"
        )
    return f"masques appliqués ({names})" if names else "aucun masque"


def _signer(hub: HubServices, key: Ed25519PrivateKey | None) -> str:
    """The fingerprint of the key the packages were signed with (the recording
    manager's, loaded at start; read from the data directory otherwise)."""
    return fingerprint(key or load_or_create(hub.data_dir))
