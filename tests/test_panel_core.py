"""The panel's frame in real Chromium: login, the navigation by role, the
language switch, the password change, error pages; and its catalogues."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from panel_helpers import PASSWORD, login, person, shoot

from csuhub.panel.i18n import _accepted, extract, missing, translated
from csuhub.panel.pages import check_next
from csuhub.testing import make_hub


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Any]:
    async with make_hub(tmp_path / "hub", {"cameras": []}, web=True, sweeping=False) as running:
        yield running


def test_every_french_message_is_translated() -> None:
    """Any string of the panel's templates or modules without a French
    translation fails here; ``python -m csuhub.panel.i18n missing`` prints them."""
    assert missing("fr") == {}


def test_no_catalogue_entry_is_stale() -> None:
    used = set(extract())
    stale = sorted(set(translated("fr")) - used)
    assert stale == [], f"entries no page uses any more: {stale}"


def test_french_placeholders_match_the_english_ones() -> None:
    field = re.compile(r"%\(\w+\)s")
    for msgid, msgstr in translated("fr").items():
        assert sorted(field.findall(msgid)) == sorted(field.findall(msgstr)), msgid


@given(st.text(max_size=300))
def test_next_is_a_panel_path_or_nothing(value: str) -> None:
    target = check_next(value)
    if target is not None:
        assert target.startswith("/panel/") and "//" not in target and ".." not in target
        assert "\\" not in target and "@" not in target


@given(st.text(max_size=600))
def test_accept_language_never_raises(header: str) -> None:
    for lang, quality in _accepted(header):
        assert lang and isinstance(quality, float)


async def test_no_session_goes_to_the_login_and_back(hub: Any) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{hub.web.url}/panel/", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/panel/login"
        areas = ("wall", "cameras", "playback", "incidents", "logbook", "requisitions")
        areas += ("discovery", "audit", "masks", "admin")
        for area in areas:  # each area's pages: login, then back
            url = f"{hub.web.url}/panel/{area}?x=1"
            async with http.get(url, allow_redirects=False) as resp:
                assert resp.status == 303, area
                assert resp.headers["Location"] == f"/panel/login?next=/panel/{area}?x%3D1"
        async with http.get(f"{hub.web.url}/panel/login?next=//evil.example/") as resp:
            assert resp.status == 200
            assert 'data-next="/panel/"' in await resp.text()  # not the foreign one
        async with http.get(f"{hub.web.url}/api/cameras") as resp:
            assert resp.status == 401  # the API still answers JSON
            assert "json" in resp.headers["Content-Type"]


async def test_the_language_switch_keeps_the_page_s_query(hub: Any) -> None:
    """Switching language on a page opened with a query (a camera, a range, the
    page to go back to) stays on that very page: it used to drop the query."""
    async with aiohttp.ClientSession() as http:
        url = f"{hub.web.url}/panel/login?next=/panel/cameras&lang=fr"
        async with http.get(url) as resp:
            text = await resp.text()
    link = re.search(r'<a class="lang" href="([^"]*)"', text)
    assert link is not None
    assert html.unescape(link.group(1)) == "?next=/panel/cameras&lang=en"


async def test_login_navigation_by_role_and_language(hub: Any, chromium: Any) -> None:
    await person(hub, "olga", "operator")
    await person(hub, "aude", "auditor")
    page = await login(chromium, hub, "olga", next_page="/panel/")
    nav = await page.locator("nav li").all_inner_texts()
    assert "Mur" in nav and "Caméras" in nav and "Main courante" in nav
    assert "Masques" in nav  # an operator may ask for a mask lift
    assert "Audit et éthique" not in nav and "Administration" not in nav
    assert await page.locator("html").get_attribute("lang") == "fr"
    assert "Europe/Paris" in await page.locator(".zone").inner_text()
    await shoot(page, "home-fr")
    await page.click("a.lang")  # to English, kept in a cookie
    await page.wait_for_selector("html[lang=en]")
    assert "Cameras" in await page.locator("nav").inner_text()
    await page.goto(f"{hub.web.url}/panel/")
    assert await page.locator("html").get_attribute("lang") == "en"
    # an auditor sees the audit, not the wall or playback
    other = await login(chromium, hub, "aude", lang="en")
    nav = await other.locator("nav li").all_inner_texts()
    assert "Audit and ethics" in nav and "Wall" not in nav and "Playback" not in nav
    assert page.errors == [] and other.errors == []  # type: ignore[attr-defined]
    # logout ends the session: the panel sends to the login again
    await page.click("#logout")
    await page.wait_for_url("**/panel/login")
    await page.goto(f"{hub.web.url}/panel/")
    assert "/panel/login" in page.url


async def test_a_wrong_password_is_said_and_the_keyboard_works(hub: Any, chromium: Any) -> None:
    await person(hub, "olga", "operator")
    context = await chromium.new_context(locale="fr")
    page = await context.new_page()
    await page.goto(f"{hub.web.url}/panel/login")
    await page.keyboard.press("Tab")  # the skip link first, then the form
    await page.fill("#user", "olga")
    await page.fill("#password", "not the password at all")
    await page.keyboard.press("Enter")
    error = page.locator("#login-error")
    await error.wait_for(state="visible")
    assert "erroné" in await error.inner_text()
    records = await hub.store.audit_records(limit=50)
    assert any(r.action == "login.failed" for r in records)


async def test_the_password_change_page(hub: Any, chromium: Any) -> None:
    await person(hub, "olga", "operator")
    page = await login(chromium, hub, "olga", lang="en")
    await page.goto(f"{hub.web.url}/panel/password")
    new = "another long enough password for olga"
    await page.fill("#current", PASSWORD)
    await page.fill("#new", new)
    await page.fill("#again", new + "x")
    await page.click("#password-form button[type=submit]")
    assert "differ" in await page.locator("#password-error").inner_text()
    await page.fill("#again", new)
    await page.click("#password-form button[type=submit]")
    await page.locator("#password-done").wait_for(state="visible")
    again = await login(chromium, hub, "olga", password=new)
    assert "/panel/" in again.url


async def test_error_pages_and_static_files(hub: Any, chromium: Any) -> None:
    await person(hub, "aude", "auditor")
    page = await login(chromium, hub, "aude", lang="en")
    answer = await page.goto(f"{hub.web.url}/panel/static/x/../../hub.py")
    assert answer is not None and answer.status == 404
    async with aiohttp.ClientSession() as http:
        for bad in ("x/..%2F..%2Fpages.py", "x/vendor/leaflet/LICENSE", "x/panel.py"):
            async with http.get(f"{hub.web.url}/panel/static/{bad}") as resp:
                assert resp.status == 404, bad
        async with http.get(f"{hub.web.url}/panel/static/x/panel.js") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "text/javascript"
        async with http.get(f"{hub.web.url}/panel/login") as resp:
            csp = resp.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_a_plural_entry_translates_both_forms(tmp_path: Path, monkeypatch: Any) -> None:
    """Each msgid of an ``ngettext`` counts as translated only with all its forms."""
    import csuhub.panel.i18n as i18n

    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "x.po").write_text(
        'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n\n'
        'msgid "%(num)s camera"\nmsgid_plural "%(num)s cameras"\n'
        'msgstr[0] "%(num)s caméra"\nmsgstr[1] "%(num)s caméras"\n\n'
        'msgid "%(num)s wall"\nmsgid_plural "%(num)s walls"\n'
        'msgstr[0] "%(num)s mur"\nmsgstr[1] ""\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "LOCALE_ROOT", tmp_path)
    done = i18n.translated("fr")
    assert done["%(num)s camera"] == "%(num)s caméra"
    assert done["%(num)s cameras"] == "%(num)s caméras"
    assert done["%(num)s wall"] == "" and done["%(num)s walls"] == ""  # half done is not done


@given(
    st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.text(max_size=40),
    )
)
def test_a_time_of_any_value_renders_without_raising(value: Any) -> None:
    """A stored time no calendar holds (a fuzzed requisition's year 31690708) is
    shown as it is, not a 500 for the whole page."""
    from zoneinfo import ZoneInfo

    from csuhub.panel.render import format_when

    shown = format_when.__wrapped__ if hasattr(format_when, "__wrapped__") else format_when
    text = shown({"tz": ZoneInfo("Europe/Paris"), "locale": "fr_FR"}, value)
    assert isinstance(text, str) and text


def test_the_configured_language_answers_a_browser_the_panel_cannot() -> None:
    """A browser asking German gets the site's ``hub.language``, not always French."""
    from aiohttp.test_utils import make_mocked_request

    from csuhub.panel.i18n import negotiate

    german = make_mocked_request("GET", "/panel/", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert negotiate(german, "en") == "en" and negotiate(german) == "fr"
    english = make_mocked_request("GET", "/panel/", headers={"Accept-Language": "de, en;q=0.5"})
    assert negotiate(english, "fr") == "en"
    chosen = make_mocked_request("GET", "/panel/?lang=fr", headers={"Accept-Language": "en"})
    assert negotiate(chosen, "en") == "fr"


def test_the_guide_s_screenshots_exist_and_come_from_the_tests() -> None:
    """Each image docs/panel.md shows is kept in docs/img/panel/ and is one a
    Chromium test takes (``shoot(page, name)``), so a run refreshes it."""
    root = Path(__file__).resolve().parent.parent
    guide = (root / "docs" / "panel.md").read_text(encoding="utf-8")
    shown = re.findall(r"\]\((img/panel/panel-([\w-]+)\.png)\)", guide)
    assert len(shown) >= 12
    taken = "".join(p.read_text(encoding="utf-8") for p in root.glob("tests/test_panel_*.py"))
    for path, name in shown:
        assert (root / "docs" / path).is_file(), path
        assert f'"{name}"' in taken, f"no test takes {name}"
