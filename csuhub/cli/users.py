"""``csuhub users add|passwd|disable|enable|list|grant|revoke``: people and
service accounts, written to the store directly (safe beside a running hub:
it reads accounts from the store on every request)."""

from __future__ import annotations

import argparse
import asyncio
import sys

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
from csuhub.security.accounts import AccountError, Accounts
from csuhub.security.permissions import ROLES, system_principal
from csuhub.store import StoreError

SCOPE_HELP = "camera scope: '*' or district:X, group:Y, camera:Z, wall:W (repeatable)"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="manage people and service accounts")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = users_sub.add_parser("add", help="add an account (a generated password is shown once)")
    add.add_argument("name")
    add.add_argument("--role", action="append", choices=ROLES, required=True, dest="roles")
    add.add_argument("--scope", action="append", default=[], help=SCOPE_HELP)
    add.add_argument("--service", action="store_true", help="a service account (tokens only)")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    passwd = users_sub.add_parser("passwd", help="set a person's password; ends their sessions")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    disable = users_sub.add_parser("disable", help="disable an account, its sessions and tokens")
    disable.add_argument("name")
    enable = users_sub.add_parser("enable", help="enable a disabled account again")
    enable.add_argument("name")
    listing = users_sub.add_parser("list", help="list accounts (never their hashes)")
    grant = users_sub.add_parser("grant", help="grant roles or camera scope")
    revoke = users_sub.add_parser("revoke", help="revoke roles or camera scope")
    for p in (grant, revoke):
        p.add_argument("name")
        p.add_argument("--role", action="append", choices=ROLES, default=[], dest="roles")
        p.add_argument("--scope", action="append", default=[], help=SCOPE_HELP)
    for p in (add, passwd, disable, enable, listing, grant, revoke):
        add_hub_options(p, config_help="site file (for its data_dir)")


def cmd_users(args: argparse.Namespace, out: Output) -> int:
    hub = hub_for(args)
    # accounts may be made before the hub's first start, in an existing directory
    require_data(hub, writes=args.users_command != "list")
    password = None
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input")
    return asyncio.run(_users(hub, args, out, password))


async def _users(hub: Hub, args: argparse.Namespace, out: Output, password: str | None) -> int:
    async with open_store(hub) as store:
        accounts = Accounts(store)
        try:
            await _act(accounts, args, out, password)
        except (AccountError, StoreError) as err:
            raise CliError(str(err), EXIT_INVALID) from None
    return EXIT_OK


async def _act(
    accounts: Accounts, args: argparse.Namespace, out: Output, password: str | None
) -> None:
    cli = system_principal("cli")
    command, name = args.users_command, getattr(args, "name", None)
    if command == "add":
        added = await accounts.add(
            cli,
            name,
            roles=args.roles,
            scope=args.scope,
            service=args.service,
            password=password,
        )
        data = added.user.public()
        # the stored name: case-folded and NFC-normalised (security.accounts)
        human = f"{added.user.kind} {added.user.name} added ({'+'.join(added.user.roles)})"
        if not added.user.scope:
            human += "; no camera scope yet: it sees no camera (users grant --scope)"
        if added.generated is not None:
            data["password"] = added.generated
            human += f"; its password is shown only once:\n{added.generated}"
        out.document(data, human)
    elif command == "passwd":
        generated = await accounts.set_password(cli, name, password)
        data = {"name": name, "password": generated} if generated else {"name": name}
        human = f"password of {name} changed; their sessions ended"
        if generated:
            human += f"; the new password is shown only once:\n{generated}"
        out.document(data, human)
    elif command == "disable":
        await accounts.disable(cli, name)
        out.document({"disabled": name}, f"{name} disabled; its sessions and tokens stop")
    elif command == "enable":
        await accounts.enable(cli, name)
        out.document({"enabled": name}, f"{name} enabled")
    elif command == "list":
        users = await accounts.store.users.list()
        rows = [
            (
                u.name,
                u.kind,
                ",".join(u.roles) or "-",
                ",".join(u.scope) or "-",
                "disabled" if u.disabled_at else "active",
            )
            for u in users
        ]
        out.document(
            {"users": [u.public() for u in users]},
            table(rows, ("NAME", "KIND", "ROLES", "SCOPE", "STATE")) if rows else "no users",
        )
    else:
        if not args.roles and not args.scope:
            raise CliError(f"users {command}: give --role or --scope")
        user = await accounts.change(
            cli, name, grant=command == "grant", roles=args.roles, scope=args.scope
        )
        out.document(
            user.public(),
            f"{name}: roles {','.join(user.roles) or '-'}; scope {','.join(user.scope) or '-'}",
        )


HANDLERS = {"users": cmd_users}
