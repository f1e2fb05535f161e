"""Uploads stop at MAX_PROBE_UPLOAD_BYTES while they stream in, before any check reads them.

`CappedUploadHandler` comes first in FILE_UPLOAD_HANDLERS: it counts the bytes of every file of
the request and, past the cap, stops the parse. Django then reads the rest of the body in small
chunks and drops it (so the client gets its answer instead of a reset connection) and no file is
kept. The view asks `check_upload(request)` right after the body is parsed and answers a named
error on the probe field.
"""
from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from bounty import errors
from bounty.errors import BountyError

REFUSED = "upload_refused_past_bytes"  # the request attribute set when an upload was stopped


class CappedUploadHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
        return None  # let the next handlers do the parsing

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        limit = settings.MAX_PROBE_UPLOAD_BYTES
        if self.received > limit:
            setattr(self.request, REFUSED, limit)
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        return None  # the memory or temporary-file handler after this one keeps the file


def check_upload(request) -> None:
    """Raise BountyError(field="probe") if the request's upload was stopped at the cap."""
    request.POST  # noqa: B018 - parses the body (the files with it) if nothing has yet
    limit = getattr(request, REFUSED, None)
    if limit is not None:
        raise BountyError(errors.UPLOAD_TOO_LARGE.format(limit=limit), field="probe")
