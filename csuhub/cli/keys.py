"""``csuhub verify`` and ``csuhub keys``: evidence packages checked offline, the hub's
signing key, and the signers the person verifying trusts."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from csuhub.cli.common import (
    DATA_HELP,
    EXIT_INVALID,
    EXIT_USAGE,
    CliError,
    Output,
    add_hub_options,
    add_json,
    hub_for,
    require_data,
    table,
)
from csuhub.recording.signing import fingerprint, load_private, public_pem
from csuhub.recording.trust import (
    Anchor,
    TrustError,
    TrustStore,
    fingerprint_anchor,
    hub_anchor,
    key_file_anchor,
    resolve,
)
from csuhub.recording.verify import Status, Verification, printable, verify_package


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = sub.add_parser(
        "verify",
        help="check an evidence package offline: exit 0 intact and signed by a trusted key, "
        "1 tampered, 2 unreadable, 3 consistent but the signer is not trusted",
    )
    verify.add_argument("package", type=Path)
    verify.add_argument(
        "--key",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="trust this public key (PEM, from csuhub keys public); repeatable",
    )
    verify.add_argument(
        "--fingerprint",
        action="append",
        default=[],
        metavar="SHA256:...",
        help="trust the key with this fingerprint (csuhub keys show); repeatable",
    )
    verify.add_argument(
        "--data", type=Path, help="trust the signing key of the hub with this data directory"
    )
    add_json(verify)

    keys = sub.add_parser("keys", help="the hub's signing key, and the signers you trust")
    key_actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    public = key_actions.add_parser("public", help="print the hub's public key (PEM)")
    show = key_actions.add_parser("show", help="print the hub's key fingerprint")
    trust = key_actions.add_parser("trust", help="trust a signer (your trust store)")
    trust.add_argument("key", metavar="FILE|FINGERPRINT", help="a public key PEM or SHA256:...")
    trust.add_argument("--label", default="", help="whose key it is (shown by keys list)")
    untrust = key_actions.add_parser("untrust", help="stop trusting a signer")
    untrust.add_argument("key", metavar="FILE|FINGERPRINT")
    trusted = key_actions.add_parser("list", help="the signers your trust store holds")
    for p in (trust, untrust, trusted):
        add_json(p)
    for p in (public, show):
        add_hub_options(p, data_help=DATA_HELP)


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    """Exit 0 intact (trusted signer), 1 tampered, 2 unreadable or usage, 3 untrusted."""
    try:
        anchors = [key_file_anchor(path) for path in args.key]
        anchors += [fingerprint_anchor(text) for text in args.fingerprint]
        if args.data is not None:
            anchors.append(hub_anchor(args.data))
        # anchors given here are the only ones; the trust store is for when none is
        if not anchors:
            anchors = TrustStore().anchors()
    except TrustError as err:
        raise CliError(printable(str(err)), EXIT_USAGE) from None
    result = verify_package(args.package, anchors)
    shown = printable(str(args.package))
    out.document(
        {"package": shown, **result.as_dict(), "anchors": [a.fingerprint for a in anchors]},
        _verdict(shown, result, anchors),
    )
    return result.exit_code


def _verdict(shown: str, result: Verification, anchors: list[Anchor]) -> str:
    if result.status in (Status.TAMPERED, Status.UNREADABLE):
        head = "TAMPERED" if result.status is Status.TAMPERED else "cannot be verified"
        return f"{shown}: {head}\n" + "\n".join(f"  {p}" for p in result.problems)
    manifest = result.manifest or {}
    camera = manifest.get("camera")
    facts = printable(
        f"camera {camera.get('id') if isinstance(camera, dict) else None}, hub "
        f"{manifest.get('hub')}, exported by {manifest.get('exported_by')}"
    )
    if result.status is Status.INTACT:
        return (
            f"{shown}: intact\n  signature and every member's SHA-256 verified\n"
            f"  signed by {result.signer} (trusted: {printable(result.trusted_by or '')})\n"
            f"  {facts}"
        )
    trusted = ", ".join(a.fingerprint for a in anchors) or "none (csuhub keys list is empty)"
    return (
        f"{shown}: consistent but the signer is not trusted\n"
        f"  signer {result.signer}\n"
        f"  trusted here: {trusted}\n"
        f"  the signature and every hash agree, but only with the key inside the package;\n"
        f"  compare the signer with the fingerprint the hub gives (csuhub keys show, the\n"
        f"  requisition receipt), then: csuhub verify --fingerprint {result.signer} ...\n"
        f"  the package claims: {facts} (unverified until the signer is)"
    )


def cmd_keys(args: argparse.Namespace, out: Output) -> int:
    if args.keys_command in ("trust", "untrust", "list"):
        return _trust_store(args, out)
    hub = hub_for(args)
    require_data(hub)  # a mistyped --data must not mint a key nobody will ever use
    try:
        key = load_private(hub.data_dir)
    except (OSError, ValueError) as err:
        raise CliError(f"the hub's signing key cannot be read: {err}", EXIT_INVALID) from None
    if key is None:
        raise CliError(
            f"no signing key in {hub.data_dir} yet: the hub makes it when it first starts",
            EXIT_INVALID,
        )
    pem = public_pem(key).decode()
    print_ = fingerprint(key)
    if args.keys_command == "show":
        out.document({"fingerprint": print_, "public_key": pem}, print_)
    else:
        out.document({"public_key": pem, "fingerprint": print_}, pem.rstrip())
    return 0


def _trust_store(args: argparse.Namespace, out: Output) -> int:
    """The person's own trust store: no hub, no data directory."""
    store = TrustStore()
    try:
        if args.keys_command == "list":
            entries = store.entries()
            rows = [
                (e["fingerprint"], printable(e.get("label") or "-"), _day(e.get("added")))
                for e in entries
            ]
            out.document(
                {"store": str(store.path), "keys": entries},
                table(rows, ("FINGERPRINT", "LABEL", "ADDED"))
                if rows
                else f"no trusted signers in {store.path}",
            )
            return 0
        fp, label = resolve(args.key)
        if args.keys_command == "trust":
            added = store.add(fp, args.label or label)
            out.emit(
                f"{'trusted' if added else 'already trusted'}: {fp} (store {store.path})",
                event="trusted",
                fingerprint=fp,
                added=added,
                store=str(store.path),
            )
            return 0
        if not store.remove(fp):
            raise CliError(f"{fp} is not in the trust store {store.path}", EXIT_INVALID)
        out.emit(f"no longer trusted: {fp}", event="untrusted", fingerprint=fp)
        return 0
    except TrustError as err:
        raise CliError(printable(str(err)), EXIT_USAGE) from None
    except OSError as err:
        raise CliError(f"trust store {store.path}: {err.strerror or err}", EXIT_INVALID) from None


def _day(epoch: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d", time.localtime(float(epoch)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"


HANDLERS = {"verify": cmd_verify, "keys": cmd_keys}
