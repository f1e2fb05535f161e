"""/api/docs/: readable API docs under the site's strict policy, every asset from this host."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_docs_page_loads_its_scripts_and_styles_from_this_host_only(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    scripts = re.findall(r"<script\b([^>]*)>", html)
    sources = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs in scripts]
    assert len(sources) == 3 and all(src.startswith("/") and not src.startswith("//") for src in sources), sources
    assert "swagger-ui-bundle.js" in sources[0] and sources[-1].startswith("/api/docs/?script")
    assert "<style" not in html and 'style="' not in html
    links = re.findall(r'<link[^>]+href="([^"]+)"', html)
    assert links and all(href.startswith("/") and not href.startswith("//") for href in links), links
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy


def test_the_init_script_is_javascript_pointing_at_the_schema_without_a_validator(client):
    response = client.get("/api/docs/?script=")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/javascript")
    body = response.content.decode()
    assert f'url: "{reverse("api-schema")}"' in body and '"validatorUrl": null' in body


def test_the_footer_links_the_docs(client):
    assert f'href="{reverse("api-docs")}">API docs</a>' in client.get("/").content.decode()
