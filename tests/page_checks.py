"""Checks every page we ship must pass in Chromium: a clean load and an icon.

A missing ``/favicon.ico`` shows only as a console error: Playwright reports no event for
that request.
"""

from __future__ import annotations

from playwright.async_api import Page

__all__ = ["PageProblems", "assert_icon_served"]


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
