"""A finding's zips are built once, stored, and streamed: a second download rebuilds nothing."""
from __future__ import annotations

import io
import tracemalloc
import zipfile

import pytest
from django.urls import reverse

from bounty import bundles
from tests.bounty.conftest import publish
from tests.factories import user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def finding(measured):
    publish(measured, judge=user_create("jules"))
    return measured


def _body(response) -> bytes:
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("url_name, builder", [("finding-image-set", "image_set_zip_write"),
                                                ("finding-bundle", "finding_bundle_write")])
def test_a_zip_is_built_once_then_streamed_from_storage(client, finding, monkeypatch, url_name, builder):
    built = []
    original = getattr(bundles, builder)
    monkeypatch.setattr(bundles, builder, lambda **kw: built.append(1) or original(**kw))
    url = reverse(url_name, args=[finding.pk])
    first = _body(client.get(url))
    tracemalloc.start()
    second = _body(client.get(url))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert first == second and len(built) == 1
    assert zipfile.ZipFile(io.BytesIO(second)).testzip() is None
    # streamed in blocks: the request's own allocations stay far below the zip's size (the join above
    # holds the body once; the response itself adds no copy of it)
    assert peak < 2 * len(second) + 2**20
