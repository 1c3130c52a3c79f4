"""``csuhub tokens create|list|revoke``: API tokens, written to the store directly.

A token belongs to an account (``--user``) and acts with one of its roles;
without ``--user`` it gets a service account of its own, ``token:<name>``,
holding its role and no camera (the legacy ``viewer`` role: every camera, as
tokens had before accounts existed) until one is granted
(:func:`csuhub.security.tokens.service_scope`); the output says so."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from csuhub.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    Output,
    add_hub_options,
    hub_for,
    open_store,
    require_data,
    table,
)
from csuhub.hub import Hub
from csuhub.security.accounts import normalize_name
from csuhub.security.permissions import ROLES, system_principal
from csuhub.security.tokens import SERVICE_PREFIX, hash_secret, new_secret, service_scope
from csuhub.store import StoreError
from csuhub.store.audited import Entry


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens = sub.add_parser("tokens", help="manage API tokens")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = tokens_sub.add_parser("create", help="create a token (shown once)")
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--user", help="the account it belongs to (must hold --role)")
    listing = tokens_sub.add_parser("list", help="list tokens (never their secrets)")
    revoke = tokens_sub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("name")
    for p in (create, listing, revoke):
        add_hub_options(p, config_help="site file (for its data_dir)")


def cmd_tokens(args: argparse.Namespace, out: Output) -> int:
    hub = hub_for(args)
    # tokens may be made before the hub's first start, in an existing directory
    require_data(hub, writes=args.tokens_command != "list")
    return asyncio.run(_tokens(hub, args, out))


async def _tokens(hub: Hub, args: argparse.Namespace, out: Output) -> int:
    async with open_store(hub) as store:
        cli = system_principal("cli")
        if args.tokens_command == "create":
            secret = new_secret()
            user = normalize_name(args.user) if args.user else None
            owner = user or SERVICE_PREFIX + args.name
            params: dict[str, Any] = {"role": args.role, "user": owner}
            scope = None if user else service_scope(args.role)
            if scope is not None:
                params["scope"] = scope
            entry = Entry(cli, "token.create", args.name, params)
            try:
                # TokenStore (store/protocols.py) does not declare scope yet
                await store.tokens.create(  # type: ignore[call-arg]
                    args.name, args.role, hash_secret(secret), user, entry, scope=scope
                )
            except StoreError as err:
                raise CliError(str(err), EXIT_INVALID) from None
            human = f"token {args.name} ({args.role}, of {owner}) created"
            if scope == []:
                human += (
                    f"; {owner} sees no camera until granted one"
                    f" (csuhub users grant {owner} --scope ...)"
                )
            out.document(
                {"name": args.name, "role": args.role, "user": owner, "token": secret}
                | ({"scope": scope} if scope is not None else {}),
                f"{human}; it is shown only once:\n{secret}",
            )
        elif args.tokens_command == "list":
            tokens = await store.list_tokens()
            out.document({"tokens": tokens}, _token_table(tokens) if tokens else "no tokens")
        else:
            entry = Entry(cli, "token.revoke", args.name)
            if not await store.tokens.revoke(args.name, entry):
                raise CliError(f"no active token named {args.name!r}", EXIT_INVALID)
            out.document({"revoked": args.name}, f"token {args.name} revoked")
    return EXIT_OK


def _token_table(tokens: list[dict[str, Any]]) -> str:
    """The USER column appears once a token belongs to a named account (a token
    of its own ``token:<name>`` account needs none)."""
    owned = any(t["user"] != f"token:{t['name']}" for t in tokens)
    rows = [
        (
            t["name"],
            t["role"],
            *((t["user"] or "-",) if owned else ()),
            "revoked" if t["revoked_at"] else "active",
        )
        for t in tokens
    ]
    return table(rows, ("NAME", "ROLE", *(("USER",) if owned else ()), "STATE"))


HANDLERS = {"tokens": cmd_tokens}
