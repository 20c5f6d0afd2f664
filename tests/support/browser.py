"""Debian's Chromium driven by Playwright: one way to launch it, for every browser test, and
the checks every page we ship must pass in it: a clean load, an icon, patterns that work.

Chromium runs headless as root (``--no-sandbox``) and without the background services that
would try to reach the network; pages are served over http:// from the loopback origin,
since Chromium refuses ws:// to 127.0.0.1 from about:blank or file:// pages.

Chromium compiles an input's ``pattern`` with the ``v`` flag, under which ``[\\w-]`` is a
syntax error; it then logs the error and skips the check, so a bad pattern only shows as a
console error and as a value that should have been refused. Likewise a missing
``/favicon.ico`` shows only as a console error: Playwright reports no event for that request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright, expect

from .timing import MS
from .tools import CHROMIUM, require

__all__ = [
    "CHROMIUM_ARGS",
    "PLAYWRIGHT_TIMEOUT",
    "PageProblems",
    "Screenshot",
    "assert_icon_served",
    "assert_patterns_enforced",
    "launch_chromium",
]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: Playwright's timeouts, in milliseconds.
PLAYWRIGHT_TIMEOUT = 10_000 * MS * 1000

#: ``await screenshot(page, name)``, the fixture of ``examples/conftest.py``: the page saved as
#: ``<name>.png``, whose path it returns.
Screenshot = Callable[[Page, str], Awaitable[Path]]


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    """Start Chromium; skip the test if it's missing, except under ``CI=true`` where it fails."""
    require(CHROMIUM.exists(), f"Chromium isn't installed at {CHROMIUM}")
    expect.set_options(timeout=PLAYWRIGHT_TIMEOUT)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=PLAYWRIGHT_TIMEOUT
        )
        try:
            yield browser
        finally:
            await browser.close()


class PageProblems:
    """What goes wrong on ``page`` from now on: console errors, uncaught exceptions, HTTP errors."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("console", lambda message: self._console(message.type, message.text))
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url} {request.failure}"))
        page.on(
            "response",
            lambda response: (
                self.problems.append(f"{response.status}: {response.url}") if response.status >= 400 else None
            ),
        )

    def _console(self, kind: str, text: str) -> None:
        if kind == "error":
            self.problems.append(f"console: {text}")


async def assert_icon_served(page: Page) -> None:
    """The page links an icon, and the server answers it with an image (or it is one, inline).

    Unlike the console error of a missing icon, which may come after the test looked, this
    fails whenever the icon is missing.
    """
    href: str = await page.eval_on_selector('link[rel~="icon"]', "link => link.href")
    if href.startswith("data:"):
        assert href.startswith("data:image/"), href
        return
    answer = await page.request.get(href)
    assert answer.status == 200, (href, answer.status)
    assert answer.headers["content-type"].startswith("image/"), (href, answer.headers["content-type"])


#: Refused by every pattern we use, and within every ``maxlength``.
INVALID = "no/slash!"
#: Taken by every pattern we use.
VALID = "ada-1"


async def assert_patterns_enforced(page: Page, count: int) -> None:
    """Each of the page's ``count`` inputs with a ``pattern`` compiles it and refuses a bad value.

    The value is set from a script, which pattern checks apply to as to typing, so inputs not
    shown yet are checked too; each gets its value back afterwards.
    """
    results: list[dict[str, Any]] = await page.eval_on_selector_all(
        "input[pattern]",
        """(inputs, [invalid, valid]) => inputs.map((input) => {
            const saved = input.value;
            let compiles = true;
            try { new RegExp(`^(?:${input.pattern})$`, "v"); } catch { compiles = false; }
            input.value = invalid;
            const refuses = !input.checkValidity() && input.validity.patternMismatch;
            input.value = valid;
            const takes = input.checkValidity();
            input.value = saved;
            return {input: input.id, pattern: input.pattern, compiles, refuses, takes};
        })""",
        [INVALID, VALID],
    )
    assert len(results) == count, results
    for result in results:
        assert result["compiles"] and result["refuses"] and result["takes"], result
