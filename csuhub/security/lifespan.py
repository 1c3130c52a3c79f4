"""What the security model runs for as long as the hub does: the audit chain's
daily anchors (written once more at stop) and the expiry of mask lifts; and,
at start, the record of the site file's privacy masks that a command run
without the site file (``csuhub export --data``) masks by.

They belong to the hub, not to its web application: a hub run without the web
server still anchors its audit, and a lift still ends (and is audited ending)
on time rather than at its next use.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from csuhub.audit.anchors import anchoring
from csuhub.masks.lifts import expiring
from csuhub.masks.policy import remember_site_masks

if TYPE_CHECKING:
    from csuhub.hub import Hub


async def start_security(hub: Hub, stack: AsyncExitStack) -> None:
    """Enter both on ``stack``, after the store opened and before ``hub.stop`` is
    audited (so the last anchor holds that entry); record the site masks first."""
    await remember_site_masks(hub)
    await stack.enter_async_context(anchoring(hub))
    await stack.enter_async_context(expiring(hub.store))
