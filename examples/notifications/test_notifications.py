"""Notifications in Chromium: personal channels, the backend's publications, unread counts.

Alice and Bob sign in; what one does to the other reaches the other's page only, as a
toast and an unread notification. Alice's page is refused Bob's channel. Bob's page misses
notifications while offline and recovers them; marking all read reaches his other pages; a
page he opens after a notification arrived shows it, with the right unread count.
"""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, Page, expect
from tests.support.browser import Screenshot
from tests.support.http import http
from tests.support.serve import StartDemo


class Inbox:
    """Someone signed in on the notifications page."""

    def __init__(self, page: Page, name: str) -> None:
        self.page = page
        self.name = name
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    @classmethod
    async def open(cls, context: BrowserContext, url: str, name: str) -> Inbox:
        page = await context.new_page()
        await page.goto(url)
        inbox = cls(page, name)
        await page.fill("#name", name)
        await page.click("#signin button")
        await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        return inbox

    async def act(self, to: str, kind: str) -> None:
        await self.page.fill("#to", to)
        await self.page.locator("#sent").evaluate("node => node.textContent = ''")
        await self.page.click(f'button[data-kind="{kind}"]')
        await expect(self.page.locator("#sent")).to_contain_text(f"Sent to notifications:#{to}")

    async def expect_unread(self, count: int) -> None:
        await expect(self.page.locator("#unread")).to_have_text(str(count))
        await expect(self.page.locator(".notification[data-unread]")).to_have_count(count)

    async def expect_notifications(self, texts: list[str]) -> None:
        """The list, newest first."""
        await expect(self.page.locator(".notification .text")).to_have_text(texts)

    async def addressees(self) -> set[str]:
        values: list[str] = await self.page.locator(".notification").evaluate_all(
            "items => items.map((li) => li.dataset.to)"
        )
        return set(values)


async def test_notifications(start_demo: StartDemo, browser: Browser, screenshot: Screenshot) -> None:
    server = await start_demo("notifications")
    url = server.url + "/notifications/"
    alice_context = await browser.new_context()
    bob_context = await browser.new_context()
    alice = await Inbox.open(alice_context, url, "alice")
    bob = await Inbox.open(bob_context, url, "bob")
    await alice.expect_unread(0)
    await bob.expect_unread(0)

    # Alice likes Bob's photo: a toast and an unread notification for Bob, nothing for Alice.
    await alice.act("bob", "like")
    await expect(bob.page.locator(".toast")).to_have_text(["alice liked your photo"])
    await bob.expect_notifications(["alice liked your photo"])
    await bob.expect_unread(1)
    await bob.act("alice", "comment")
    await alice.expect_notifications(["bob commented on your post"])
    await alice.expect_unread(1)
    await bob.expect_unread(1)

    # Alice's page asks for Bob's channel: the # boundary refuses it, 103 permission denied.
    await alice.page.fill("#to", "bob")
    await alice.page.click("#peek-button")
    await expect(alice.page.locator("#peek")).to_have_attribute("data-code", "103")
    await expect(alice.page.locator("#peek")).to_contain_text("refused with 103 permission denied")

    # Bob goes offline; Alice and Carol (straight to the backend's route) notify him meanwhile.
    await bob_context.set_offline(True)
    await expect(bob.page.locator("#status")).to_have_attribute("data-state", "connecting")
    await alice.act("bob", "follow")
    answer = await http("POST", url + "act", {"actor": "carol", "to": "bob", "kind": "comment"})
    assert answer.status == 200, answer.text
    assert answer.json()["channel"] == "notifications:#bob"
    await bob_context.set_offline(False)
    await expect(bob.page.locator("body")).to_have_attribute("data-recovered", "true")
    await bob.expect_notifications(
        ["carol commented on your post", "alice started following you", "alice liked your photo"]
    )
    await bob.expect_unread(3)

    # Mark all read, on one of Bob's pages: his other page follows, Alice's doesn't.
    second = await Inbox.open(bob_context, url, "bob")
    await second.expect_unread(3)
    await bob.page.click("#mark-read")
    await bob.expect_unread(0)
    await second.expect_unread(0)
    await alice.expect_unread(1)

    # Bob closes his pages; Alice likes another photo; the page he opens next shows it unread.
    await bob.page.close()
    await second.page.close()
    await alice.act("bob", "like")
    bob = await Inbox.open(bob_context, url, "bob")
    await bob.expect_notifications(
        [
            "alice liked your photo",
            "carol commented on your post",
            "alice started following you",
            "alice liked your photo",
        ]
    )
    await bob.expect_unread(1)
    await expect(bob.page.locator(".toast")).to_have_count(0)  # history isn't news

    # Each saw only what was addressed to them; bad requests are refused before any publication.
    assert await alice.addressees() == {"alice"}
    assert await bob.addressees() == {"bob"}
    refused = [{"actor": "carol", "to": "bob#alice", "kind": "like"}, {"actor": "carol", "to": "bob", "kind": "poke"}]
    for body in refused:
        answer = await http("POST", url + "act", body)
        assert answer.status == 400, answer.text

    await alice.act("bob", "follow")
    toast = bob.page.locator(".toast")
    await expect(toast).to_have_text(["alice started following you"])
    await toast.evaluate("node => Promise.all(node.getAnimations().map((a) => a.finished))")
    await screenshot(bob.page, "notifications")
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)
