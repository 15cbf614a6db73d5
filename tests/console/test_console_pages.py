"""The console in Debian's chromium (Playwright): every page renders with data and is
photographed, the overview's charts are drawn, a rollout paused from its page is paused
for the API too, and a viewer sees no buttons and is refused on a forged POST."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.console.conftest import ARTIFACTS, Fleet

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


def signed_in(browser: Browser, fleet: Fleet, role: str) -> Page:
    """A new browser context signed in with ``role``'s token."""
    context = browser.new_context(
        base_url=fleet.server.url, viewport={"width": 1400, "height": 900}
    )
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in"))
    page.fill("#token", fleet.tokens[role])
    page.click("button[type=submit]")
    expect(page.locator("#signed-in-as")).to_contain_text(role)
    return page


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_every_page_renders_with_data_and_the_charts_are_drawn(
    browser: Browser, fleet: Fleet
) -> None:
    page = signed_in(browser, fleet, "admin")
    expect(page.locator("#model-region")).to_contain_text("alpha")
    expect(page.locator("#patch-levels")).to_contain_text("2025-06-01")
    expect(page.locator("#attention")).to_contain_text("past the end of security support")
    for chart in ("chart-patch-levels", "chart-outcomes", "chart-sources"):
        expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", re.compile(r"[1-9]"))
    painted = page.evaluate(
        """() => {
            const c = document.getElementById('chart-patch-levels');
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) n++; }
            return n;
        }"""
    )
    assert painted > 1000, "the patch level chart drew (almost) nothing"
    shoot(page, "overview")
    page.evaluate("() => { document.getElementById('chart-patch-levels').dataset.old = '1'; }")
    page.evaluate("() => htmx.trigger('#live', 'refresh')")
    refreshed = page.locator("#chart-patch-levels:not([data-old])")
    expect(refreshed).to_have_attribute("data-drawn", re.compile(r"[1-9]"))

    page.goto("/rollouts")
    expect(page.locator("#rollouts")).to_contain_text(fleet.rollout)
    expect(page.locator("#start-rollout")).to_contain_text("Start rollout")
    shoot(page, "rollouts")
    page.click(f"text={fleet.rollout}")
    expect(page.locator("#figures")).to_contain_text("offered")
    expect(page.locator("#brakes")).to_contain_text("failure")
    expect(page.locator("#history")).to_contain_text("active")
    shoot(page, "rollout")

    page.goto("/devices?model=alpha")
    expect(page.locator("#device-count")).to_contain_text("18 devices match")
    shoot(page, "devices")
    page.goto(f"/devices/{fleet.devices[1]}")
    expect(page.locator("#identity")).to_contain_text("SN001")
    expect(page.locator("#reports")).to_contain_text("booted-healthy")
    expect(page.locator("#explanation")).to_contain_text("normal")
    expect(page.locator("#decisions")).to_contain_text("licence-L1")
    shoot(page, "device")

    page.goto("/compliance")
    expect(page.locator("#timeline")).to_contain_text("normal")
    page.click("#verify-chain")
    expect(page.locator("#verification")).to_contain_text("The chain is whole")
    expect(page.locator("#deliveries")).to_contain_text("licence-L1")
    shoot(page, "compliance")

    page.goto("/support")
    expect(page.locator("#support")).to_contain_text("2025-01-01")
    expect(page.locator("#support")).to_contain_text("ended")
    shoot(page, "support")
    page.context.close()


def test_a_rollout_paused_from_its_page_is_paused_for_the_api(
    browser: Browser, fleet: Fleet
) -> None:
    page = signed_in(browser, fleet, "release-manager")
    page.goto(f"/rollouts/{fleet.rollout}")
    page.fill("input[name=reason]", "looking into a report")
    page.click("#button-pause")
    expect(page.locator("#rollout-state")).to_have_text("paused")
    shown = fleet.server.api().get(f"/api/rollouts/{fleet.rollout}").json()
    assert shown["state"] == "paused"
    assert shown["history"][-1]["actor"] == "token:release-manager"
    assert shown["history"][-1]["reason"] == "looking into a report"
    page.click("#button-resume")
    expect(page.locator("#rollout-state")).to_have_text("active")
    page.context.close()


def test_a_viewer_sees_no_buttons_and_a_forged_post_is_refused(
    browser: Browser, fleet: Fleet
) -> None:
    page = signed_in(browser, fleet, "viewer")
    page.goto(f"/rollouts/{fleet.rollout}")
    expect(page.locator("#rollout-state")).to_be_visible()
    assert page.locator("#button-pause").count() == 0
    assert page.locator("#rollout-actions").count() == 0
    shoot(page, "rollout-as-viewer")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    forged = page.request.post(
        f"/rollouts/{fleet.rollout}/pause", form={"csrf": csrf, "reason": "forged"}
    )
    assert forged.status == 403
    page.goto("/support")
    assert page.locator("#set-support").count() == 0
    forged = page.request.post(
        "/support", form={"csrf": csrf, "model": "alpha", "security_until": "2030-01-01"}
    )
    assert forged.status == 403
    page.goto("/rollouts")
    assert page.locator("#start-rollout").count() == 0
    forged = page.request.post(
        "/rollouts", form={"csrf": csrf, "model": "beta", "build": "1.0", "phases": "100"}
    )
    assert forged.status == 403
    assert len(fleet.server.api().get("/api/rollouts").json()) == 1
    assert fleet.server.api().get(f"/api/rollouts/{fleet.rollout}").json()["state"] == "active"
    page.context.close()
