"""Template filters for participant-written text: Markdown rendered, then sanitised."""
from __future__ import annotations

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

# What a writeup may use: prose, lists, code, tables and links; no images (they could track readers).
ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


@register.filter(is_safe=True)
def markdown(text: str) -> str:
    """Markdown (with tables and fenced code) to HTML, sanitised by nh3: no script, no style, no on*=."""
    html = markdown_lib.markdown(text or "", extensions=["tables", "fenced_code", "sane_lists"], output_format="html")
    return mark_safe(nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                               url_schemes={"http", "https", "mailto"}, link_rel="nofollow noopener noreferrer"))


@register.filter(is_safe=True)
def text_escape(value) -> str:
    """Escape for an HTML text node only: `&` and `<` (and quotes) matter there, `>` does not,
    so test ids such as `preference:high>low` stay readable and searchable in the page source."""
    text = str(value if value is not None else "")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace("'", "&#x27;")
    return mark_safe(text)


@register.filter
def pvalue(value) -> str:
    """A p-value for people: four decimals, "<0.0001" below that, blank when there is none."""
    if value is None or value == "":
        return ""
    value = float(value)
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


@register.filter
def cap(value, limit: int = 200) -> str:
    """A participant-controlled text cut to `limit` characters for display: the second layer behind
    the caps at the door, so no page grows with what a probe or a participant wrote."""
    text = str(value if value is not None else "")
    limit = int(limit)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters not shown)"


@register.filter
def wait(seconds) -> str:
    """A wait in seconds as people say it: "40 s", "12 min", "2.5 h" (static/js/submission.js says the same)."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{max(1, int(seconds + 0.5))} s"
    if seconds < 5400:
        return f"{int(seconds / 60 + 0.5)} min"
    return f"{seconds / 3600:.1f} h"


@register.filter
def points(value) -> str:
    """A share as percentage points, one decimal: 0.1234 → "12.3"; blank when there is none."""
    if value is None or value == "":
        return ""
    return f"{float(value) * 100:.1f}"
