"""The API docs render in a real browser under the site's CSP, with nothing fetched from another host."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_swagger_ui_renders_every_operation_without_a_policy_violation(page, live_server, artifacts_dir):
    hosts, refusals = set(), []
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.on("console", lambda message: refusals.append(message.text) if "Content Security Policy" in message.text else None)
    page.goto("/api/docs/")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any(path.replace("\u200b", "").startswith("/api/submissions/{") for path in paths), repr(paths)
    assert page.locator(".info .title").first.inner_text().startswith("Crop-bias bounty API")
    page.screenshot(path=str(artifacts_dir / "api_docs.png"), full_page=False)
    assert refusals == []
    assert hosts == {urlsplit(live_server.url).netloc}, hosts
