"""A WebSocket binary frame (RFC 6455 §5.2) built once per fragment and
written as it is to every viewer that keeps up.

Why not ``WebSocketResponse.send_bytes`` per viewer: it builds the same
header again for each viewer and, for a payload over 16 KiB (every video
fragment), writes the header and the payload separately: two ``send``
system calls per viewer and fragment where a relay makes one. A server's
frames are never masked (§5.1) and live sockets are opened without
compression, so the bytes on the wire are the same for every viewer: one
``bytes`` object, one ``transport.write`` each.
"""

from __future__ import annotations

import struct

#: FIN + opcode 2 (binary)
_BINARY = 0x82
_LEN2 = struct.Struct(">BBH")
_LEN8 = struct.Struct(">BBQ")


def binary_frame(payload: bytes) -> bytes:
    """``payload`` as one final, unmasked, uncompressed binary frame."""
    size = len(payload)
    if size < 126:
        head = bytes((_BINARY, size))
    elif size < 65536:
        head = _LEN2.pack(_BINARY, 126, size)
    else:
        head = _LEN8.pack(_BINARY, 127, size)
    return head + payload
