"""Geocoding is a plugin hook (``geocode_location``), not built in: an incident
with an address and no point is placed by the first plugin that can, else by
the district its address names. Real hub, real SQLite, real pluggy."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_incidents import OPERATOR, ORIGIN, StillPlugin, north, ready, site

from csuhub.api import CallReport, Location, hookimpl
from csuhub.incidents.nearest import haversine_m

GRAND_PLACE = "Grand Place, 59000 Lille"


class Gazetteer:
    """A geocoder that knows one address."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []

    @hookimpl
    def geocode_location(self, hub: Any, address: str, district: str | None) -> Location | None:
        self.asked.append((address, district))
        if address.casefold().startswith("grand place"):
            return Location(*ORIGIN, radius_m=30.0)
        return None


class Broken:
    @hookimpl(tryfirst=True)
    def geocode_location(self, hub: Any, address: str, district: str | None) -> Location | None:
        raise RuntimeError("geocoding service down")


class Pointless:
    @hookimpl(tryfirst=True)
    def geocode_location(self, hub: Any, address: str, district: str | None) -> Any:
        return Location(address=address)  # no point: not an answer


class Slow:
    @hookimpl(tryfirst=True)
    def geocode_location(self, hub: Any, address: str, district: str | None) -> Location | None:
        time.sleep(0.6)  # over the 0.5 s budget
        return Location(*north(5000))


@pytest.fixture
def still_hub(hub_factory: Any) -> Any:
    def make(*plugins: tuple[str, object], config: dict[str, Any] | None = None) -> Any:
        return hub_factory(
            config or site(),
            plugins=[("still", StillPlugin()), *plugins],
            health_interval=60,
        )

    return make


async def test_hook_geocode_location(still_hub: Any) -> None:
    gazetteer = Gazetteer()
    async with still_hub(("gazetteer", gazetteer), ("broken", Broken())) as hub:
        await ready(hub)
        found = hub.geocode(GRAND_PLACE, "Centre")
        assert found == Location(*ORIGIN, radius_m=30.0)
        assert gazetteer.asked == [(GRAND_PLACE, "Centre")]  # asked after the broken one
        assert hub.geocode("12 rue Inconnue") is None
        assert hub.geocode("   ") is None
        with pytest.raises(TypeError):
            hub.geocode({"address": GRAND_PLACE})
        # a call with an address alone is placed by the plugin, its address kept
        ref = await hub.calls.report(
            CallReport(line="cad", call_id="g1", location=Location(address=GRAND_PLACE))
        )
        assert ref.camera_ids == ("cam-a", "cam-b", "cam-c")
        assert ref.cameras[0].distance_m == pytest.approx(haversine_m(*ORIGIN, *north(50)), abs=1)
        incident = await hub.incidents.get(ref.id)
        assert incident.location == Location(*ORIGIN, radius_m=30.0, address=GRAND_PLACE)
        assert incident.district == "Centre"
        # the same address again is the place known: not asked again, nothing moves
        asked = len(gazetteer.asked)
        again = await hub.calls.report(
            CallReport(line="cad", call_id="g1", location=Location(address=GRAND_PLACE))
        )
        assert again.camera_ids == ref.camera_ids and len(gazetteer.asked) == asked
        # an operator's incident too
        opened = await hub.incidents.open(
            OPERATOR, category="x", location=Location(address=GRAND_PLACE)
        )
        assert opened.camera_ids == ("cam-a", "cam-b", "cam-c")


@pytest.mark.parametrize("plugin", [Pointless(), Slow()], ids=["pointless", "slow"])
async def test_a_geocoder_answering_nonsense_or_late_is_passed_over(
    still_hub: Any, plugin: Any
) -> None:
    async with still_hub(("odd", plugin), ("gazetteer", Gazetteer())) as hub:
        await ready(hub)
        assert hub.geocode(GRAND_PLACE) == Location(*ORIGIN, radius_m=30.0)


async def test_without_a_geocoder_the_district_the_address_names_places_the_incident(
    still_hub: Any,
) -> None:
    async with still_hub() as hub:
        await ready(hub)
        assert hub.geocode(GRAND_PLACE) is None  # no plugin: no answer, no error
        ref = await hub.calls.report(
            CallReport(
                line="cad", call_id="d1", location=Location(address="12 rue Pierre Legrand, FIVES")
            )
        )
        incident = await hub.incidents.get(ref.id)
        assert incident.district == "Fives"
        assert [(c.id, c.reason, c.distance_m) for c in incident.cameras] == [
            ("cam-far", "district", None),
            ("cam-fives", "district", None),
        ]
        assert incident.location == Location(address="12 rue Pierre Legrand, FIVES")
        # whole words only: "Centres" names no district
        other = await hub.incidents.open(
            OPERATOR, category="x", location=Location(address="Centres commerciaux")
        )
        assert other.cameras == () and other.district is None
        # a district of the site with no camera placed: the district, no camera
        wazemmes = await hub.incidents.open(
            OPERATOR, category="x", location=Location(address="rue de Wazemmes")
        )
        assert wazemmes.district == "Wazemmes" and wazemmes.cameras == ()


async def test_a_geocoder_s_district_hint_is_the_operator_s(still_hub: Any) -> None:
    gazetteer = Gazetteer()
    async with still_hub(("gazetteer", gazetteer)) as hub:
        await ready(hub)
        await hub.incidents.open(
            OPERATOR, category="x", location=Location(address="ici"), district="Fives"
        )
        assert gazetteer.asked == [("ici", "Fives")]


@given(address=st.text(max_size=80))
def test_district_matching_takes_any_address(address: str) -> None:
    """The address is outside input (a CAD's free text): any text gives a
    district of the site or None, never an error."""
    from types import SimpleNamespace

    from csuhub.incidents.placing import CameraMap

    districts = ("Centre", "Vieux-Lille", "Saint-Maurice Pellevoisin", "Lille-Sud")
    hub = SimpleNamespace(
        config=SimpleNamespace(settings=SimpleNamespace(hub=SimpleNamespace(districts=districts)))
    )
    found = CameraMap(hub, None).district_named(address)  # type: ignore[arg-type]
    assert found is None or (found in districts and found.casefold() in address.casefold())
    for district in districts:
        assert CameraMap(hub, None).district_named(f"{address} {district}!") is not None  # type: ignore[arg-type]
