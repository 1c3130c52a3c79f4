"""Permissions, the roles that bundle them, and the principal a request acts as.

Roles are named *sets* of permissions, not rungs of a ladder: a requisition
officer exports footage but cannot edit the wall, an auditor reads the audit and
the figures but sees no video at all, a wall kiosk sees live video of its wall
and nothing else. A principal holds the union of its roles' permissions and a
camera scope; both are checked on every request, and both fail closed: an
unknown role grants nothing, an empty scope sees no camera.

Every route declares the one permission it needs (``Access``), read by the
authentication middleware and by the OpenAPI generator from the same attribute,
so the documentation and the enforcement cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PERMISSIONS: Mapping[str, str] = {
    "camera.read": "list cameras and their state (no video)",
    "live.view": "watch live video and snapshots of cameras in scope",
    "playback.view": "play recorded footage and its frames, with a stated reason",
    "export.create": "export footage to an evidence package, with a stated reason",
    "ptz.move": "move a PTZ camera or recall its presets",
    "wall.view": "see the video wall's layout",
    "wall.edit": "change the wall: layouts, pushes, pins",
    "incident.read": "read incidents and the logbook",
    "incident.write": "open, annotate and close incidents; write the logbook",
    "incident.caller.view": "see a caller's number unmasked",
    "requisition.read": "read requisitions and their extractions (statistics need audit.read)",
    "requisition.manage": "record, export, deliver and close requisitions",
    "retention.read": "read retention status and the destruction register",
    "camera.adopt": "scan for cameras, adopt and retire them",
    "config.reload": "reload the site file",
    "user.manage": "manage users, their roles and scopes, and API tokens",
    "audit.read": "read and export the audit, the ethics figures, requisition statistics",
    "mask.edit": "draw and remove privacy masks",
    "mask.lift.request": "ask for a privacy mask to be lifted, with a reason",
    "mask.lift.approve": "approve another person's mask lift request",
}

_OPERATOR = frozenset(
    {
        "camera.read",
        "live.view",
        "playback.view",
        "ptz.move",
        "wall.view",
        "incident.read",
        "incident.write",
        "retention.read",
        "mask.lift.request",
    }
)

ROLES: Mapping[str, frozenset[str]] = {
    "operator": _OPERATOR,
    "supervisor": _OPERATOR
    | {
        "wall.edit",
        "export.create",
        "incident.caller.view",
        "requisition.read",
        "mask.lift.approve",
    },
    "requisition_officer": frozenset(
        {
            "camera.read",
            "playback.view",
            "export.create",
            "requisition.read",
            "requisition.manage",
            "retention.read",
            "incident.read",
            "mask.lift.request",
        }
    ),
    "admin": frozenset(PERMISSIONS),
    # the ethics committee: everything countable, no image
    "auditor": frozenset({"audit.read", "camera.read", "retention.read", "incident.read"}),
    # a kiosk screen: live view of its wall only (its scope names the wall)
    "wall": frozenset({"camera.read", "live.view", "wall.view"}),
    # tokens made before roles were permission sets, kept with what they could do
    "viewer": frozenset({"camera.read", "live.view", "playback.view"}),
}

SHIPPED_ROLES = ("operator", "supervisor", "requisition_officer", "admin", "auditor", "wall")

VIDEO_PERMISSIONS = frozenset({"live.view", "playback.view", "export.create"})

SCOPE_KINDS = ("district", "group", "camera", "wall")


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    """The union of the roles' permissions; a role this hub does not know adds none."""
    granted: frozenset[str] = frozenset()
    for role in roles:
        granted |= ROLES.get(role, frozenset())
    return granted


def check_scope_selector(selector: str) -> str:
    """``*`` or ``kind:value``; a ValueError names what is wrong."""
    if selector == "*":
        return selector
    kind, sep, value = selector.partition(":")
    if not sep or kind not in SCOPE_KINDS or not value.strip():
        raise ValueError(
            f"camera scope {selector!r} is not '*' or one of "
            + ", ".join(f"{k}:<name>" for k in SCOPE_KINDS)
        )
    return selector


@dataclass(frozen=True)
class CameraScope:
    """Which cameras a principal may see. Empty sees none (fail closed)."""

    selectors: frozenset[str] = frozenset()
    #: camera ids of the walls named in the scope, resolved by whoever knows walls
    wall_cameras: frozenset[str] = frozenset()

    @classmethod
    def of(cls, selectors: Iterable[str], wall_cameras: Iterable[str] = ()) -> CameraScope:
        return cls(frozenset(selectors), frozenset(wall_cameras))

    @property
    def everything(self) -> bool:
        return "*" in self.selectors

    def allows(
        self, camera_id: str, district: str | None = None, groups: Iterable[str] = ()
    ) -> bool:
        """District and group names compare without case (``district:centre``
        is the site file's ``Centre``): people type them; camera ids are exact."""
        if "*" in self.selectors:
            return True
        if f"camera:{camera_id}" in self.selectors or camera_id in self.wall_cameras:
            return True
        folded = self._folded
        if district is not None and f"district:{district.casefold()}" in folded:
            return True
        return any(f"group:{g.casefold()}" in folded for g in groups)

    @property
    def _folded(self) -> frozenset[str]:
        return frozenset(
            s.casefold() for s in self.selectors if s.startswith(("district:", "group:"))
        )

    def allows_config(self, camera: Any) -> bool:
        """A camera config (anything with ``id``, ``district``, ``groups``)."""
        return self.allows(
            str(getattr(camera, "id", "")),
            getattr(camera, "district", None),
            getattr(camera, "groups", ()) or (),
        )


@dataclass(frozen=True)
class Principal:
    """Who a request acts as, with what, from where: what the audit records."""

    name: str
    kind: str  # "user" (a person by session or token), "service", "cli", "hub"
    roles: tuple[str, ...]
    permissions: frozenset[str]
    scope: CameraScope = field(default_factory=CameraScope)
    #: the session's public id or the token's name the request came through
    via: str | None = None
    source: str | None = None

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def role(self) -> str:
        """The roles as one audit field (``operator+requisition_officer``)."""
        return "+".join(self.roles) if self.roles else "-"


def system_principal(name: str = "hub") -> Principal:
    """The hub itself, or the local CLI acting as the machine's administrator."""
    return Principal(
        name=name,
        kind="cli" if name == "cli" else "hub",
        roles=("admin",),
        permissions=frozenset(PERMISSIONS),
        scope=CameraScope.of(["*"]),
    )


#: the attribute a route's declaration sits on, read by auth and OpenAPI alike
ACCESS_ATTR = "__csuhub_access__"


@dataclass(frozen=True)
class Access:
    """What a route needs. ``permission`` None with ``public`` True: no login
    (health, and the public transparency page later); a route with no Access at
    all is refused to everyone, so forgetting a declaration is closed, not open."""

    permission: str | None
    public: bool = False
    #: the path parameter naming a camera the principal's scope must allow
    camera_param: str | None = None

    def __post_init__(self) -> None:
        if self.public == (self.permission is not None):
            raise ValueError("a route is either public or needs exactly one permission")
        if self.permission is not None and self.permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {self.permission!r}")


def access_of(handler: Any) -> Access | None:
    """The declaration on a handler, looking through aiohttp's and functools' wrappers."""
    found = marked(handler, ACCESS_ATTR)
    return found if isinstance(found, Access) else None


def marked(handler: Any, attr: str) -> Any:
    """``attr`` on ``handler`` or on what it wraps (sub-app and partial wrappers)."""
    for _ in range(6):
        found = getattr(handler, attr, None)
        if found is not None:
            return found
        inner = getattr(handler, "__wrapped__", None) or getattr(handler, "func", None)
        if inner is None:
            return None
        handler = inner
    return None
