"""Checks every page we ship must pass in Chromium: a clean load, an icon, patterns that work.

Chromium compiles an input's ``pattern`` with the ``v`` flag, under which ``[\\w-]`` is a
syntax error; it then logs the error and skips the check, so a bad pattern only shows as a
console error and as a value that should have been refused. Likewise a missing
``/favicon.ico`` shows only as a console error: Playwright reports no event for that request.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

__all__ = ["PageProblems", "assert_icon_served", "assert_patterns_enforced"]


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
