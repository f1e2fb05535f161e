"""The domain's "nothing to see here" as the pages' 404."""
from __future__ import annotations

from django.http import Http404

from bounty.errors import NotFound


class NotFoundAs404Middleware:
    """Selectors raise `bounty.errors.NotFound`; every page answers it with the usual 404 page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, NotFound):
            raise Http404(exception.message) from exception
        return None
