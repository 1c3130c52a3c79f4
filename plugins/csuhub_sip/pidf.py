"""Where the caller is: the PIDF-LO a PBX or an emergency network conveys with
the INVITE (RFC 6442 Geolocation, RFC 4119 PIDF-LO, RFC 5491 shapes).

The location is found through the ``Geolocation`` header's ``cid:`` URI, which
names a body part by its Content-ID (usually in a ``multipart/mixed`` body
beside the SDP), or, without such a header, in a body that is itself
``application/pidf+xml``. An ``http:`` or ``sip:`` location reference is not
dereferenced: the hub sends nothing to addresses a caller's network chose.

The XML comes from outside, so it is read defensively with the standard
library: UTF-8 only, at most :data:`MAX_PIDF` bytes, and any document type
declaration (where entity expansion and external entities live) is refused
before the parser sees it. Everything wrong raises :class:`LocationError`;
nothing else escapes :func:`location_of`.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from email.message import Message
from email.parser import BytesHeaderParser
from urllib.parse import unquote

from csuhub.api import Location

from .message import SipRequest, name_addr_uri, split_commas

MAX_PIDF = 16 * 1024
MAX_PARTS = 8
#: a circle wider than this is no location for a city's cameras
MAX_RADIUS_M = 100_000.0

PIDF_TYPE = "application/pidf+xml"
GP = "{urn:ietf:params:xml:ns:pidf:geopriv10}"
GML = "{http://www.opengis.net/gml}"
GS = "{http://www.opengis.net/pidflo/1.0}"
CA = "{urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr}"
#: 2D WGS84 (RFC 5491 §3), and 3D WGS84 whose altitude is ignored
CRS_2D = {"urn:ogc:def:crs:EPSG::4326"}
CRS_3D = {"urn:ogc:def:crs:EPSG::4979"}
METRES = "urn:ogc:def:uom:EPSG::9001"
#: civic address elements, in the order a French address is written
CIVIC = ("HNO", "HNS", "RD", "STS", "LMK", "LOC", "PC", "A3", "A1", "COUNTRY")


class LocationError(ValueError):
    """The call carries a location that cannot be used (answered 400 Bad
    Location Information)."""


def _media_type(value: str | None) -> tuple[str, dict[str, str]]:
    msg = Message()
    msg["content-type"] = value or "application/octet-stream"
    params = {k.lower(): v for k, v in msg.get_params(failobj=[])[1:]}
    return msg.get_content_type(), params


def _parts(body: bytes, boundary: str) -> list[tuple[Message, bytes]]:
    """The parts of a multipart body (RFC 2046 §5.1), bounded and not nested."""
    if not 1 <= len(boundary) <= 70:
        raise LocationError("multipart boundary missing or too long")
    delimiter = b"--" + boundary.encode("ascii", "strict")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise LocationError("multipart body without its parts")
    parts: list[tuple[Message, bytes]] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the close delimiter: the epilogue follows
        if len(parts) == MAX_PARTS:
            raise LocationError(f"more than {MAX_PARTS} body parts")
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            if not chunk.startswith(b"\r\n"):
                raise LocationError("body part without a blank line after its headers")
            head, content = b"", chunk[2:]
        parts.append((BytesHeaderParser().parsebytes(head + b"\r\n\r\n"), content))
    return parts


def _content_id(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip().removeprefix("<").removesuffix(">").strip()


def _pidf_bytes(request: SipRequest) -> bytes | None:
    """The PIDF-LO document the request points at, or None if it has none."""
    cids: list[str] = []
    for line in request.headers.get("geolocation", ()):
        for value in split_commas(line):
            uri = name_addr_uri(value)
            if uri and uri[:4].lower() == "cid:":
                cids.append(unquote(uri[4:].strip()))  # RFC 2392: %-encoded
    kind, params = _media_type(request.get("content-type"))
    if kind == "multipart/mixed":
        parts = _parts(request.body, params.get("boundary", ""))
        if cids:
            for headers, content in parts:
                if _content_id(headers.get("content-id")) in cids:
                    return content
            raise LocationError("Geolocation names a cid: with no body part of that Content-ID")
        pidfs = [c for h, c in parts if _media_type(h.get("content-type"))[0] == PIDF_TYPE]
        return pidfs[0] if pidfs else None
    if kind == PIDF_TYPE:
        if cids and _content_id(request.get("content-id")) not in (*cids, None):
            raise LocationError("Geolocation names a cid: the body does not carry")
        return request.body
    if cids:
        raise LocationError("Geolocation names a cid: but the body carries no PIDF-LO")
    return None


def _number(text: str | None, what: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise LocationError(f"{what} is not a number") from None
    if not math.isfinite(value):
        raise LocationError(f"{what} is not finite")
    return value


def _point(shape: ET.Element) -> tuple[float, float]:
    srs = shape.get("srsName", "")
    if srs not in CRS_2D | CRS_3D:
        raise LocationError(f"unsupported coordinate system {srs[:80]!r}")
    pos = shape.find(f"{GML}pos")
    if pos is None:
        raise LocationError("shape without gml:pos")
    values = (pos.text or "").split()
    if len(values) != (3 if srs in CRS_3D else 2):
        raise LocationError("gml:pos is not 'latitude longitude'")
    lat, lon = _number(values[0], "latitude"), _number(values[1], "longitude")
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise LocationError("latitude or longitude out of range")
    return lat, lon


def _radius(element: ET.Element | None) -> float:
    if element is None:
        raise LocationError("shape without its radius")
    if element.get("uom") != METRES:
        raise LocationError("radius not in metres (EPSG::9001)")
    value = _number(element.text, "radius")
    if not 0.0 <= value <= MAX_RADIUS_M:
        raise LocationError(f"radius out of range (0 to {MAX_RADIUS_M:g} m)")
    return value


def _shape(info: ET.Element) -> tuple[float, float, float | None] | None:
    for shape in info:
        if shape.tag == f"{GML}Point":
            return (*_point(shape), None)
        if shape.tag in (f"{GS}Circle", f"{GS}Sphere"):
            return (*_point(shape), _radius(shape.find(f"{GS}radius")))
        if shape.tag == f"{GS}Ellipse":
            return (*_point(shape), _radius(shape.find(f"{GS}semiMajorAxis")))
    return None


def _civic(info: ET.Element) -> str | None:
    civic = info.find(f"{CA}civicAddress")
    if civic is None:
        return None
    fields = {child.tag.removeprefix(CA): (child.text or "").strip() for child in civic}
    words = [fields[k] for k in CIVIC if fields.get(k)]
    text = " ".join(words)
    text = "".join(c for c in text if c.isprintable())[:200]
    return text or None


def parse_pidf(document: bytes) -> Location | None:
    """The location of a PIDF-LO document: the first geodetic shape (Point,
    Circle, Sphere or Ellipse, as a point and radius), and a civic address if
    one is given. None when the document carries neither."""
    if len(document) > MAX_PIDF:
        raise LocationError(f"PIDF-LO larger than {MAX_PIDF} bytes")
    try:
        text = document.decode("utf-8")
    except UnicodeDecodeError:
        raise LocationError("PIDF-LO is not UTF-8") from None
    if re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.I):
        raise LocationError("PIDF-LO with a document type declaration")
    try:
        root = ET.fromstring(text)  # noqa: S314 - DTDs refused above; size bounded
    except ET.ParseError:
        raise LocationError("PIDF-LO is not well-formed XML") from None
    point: tuple[float, float, float | None] | None = None
    address: str | None = None
    for info in root.iter(f"{GP}location-info"):
        point = point or _shape(info)
        address = address or _civic(info)
    if point is None and address is None:
        return None
    if point is None:
        return Location(address=address)
    lat, lon, radius = point
    return Location(lat=lat, lon=lon, radius_m=radius, address=address)


def location_of(request: SipRequest) -> Location | None:
    """The caller's location conveyed with ``request`` (RFC 6442), or None."""
    try:
        document = _pidf_bytes(request)
    except (UnicodeError, ValueError) as error:  # LocationError is a ValueError
        if isinstance(error, LocationError):
            raise
        raise LocationError(f"unreadable body: {error}") from None
    if document is None:
        return None
    return parse_pidf(document)
