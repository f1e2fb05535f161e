"""The API's JSON parser: every body it cannot read is a 400, never a 500.

DRF's JSONParser turns a `ValueError` into a ParseError, but JSON nested deeper than the
interpreter's recursion limit raises `RecursionError` inside `json.loads`, which became an
anonymous 500. Bodies nested beyond `MAX_JSON_DEPTH` are refused as well: no request the API
answers needs more than a few levels.
"""
from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32
TOO_DEEP = f"JSON parse error - the body is nested more than {MAX_JSON_DEPTH} levels deep"


def _depth(value, limit: int) -> int:
    """Nesting depth of a parsed value, counted no further than `limit` + 1 (iteratively)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise ParseError(TOO_DEEP)
        return data
