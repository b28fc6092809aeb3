"""``{% when value "M j, H:i" %}``: a moment as the league's time with its zone named ("Dec 3, 14:05 UTC"), in a
``<time>`` element that league/static/league/site.js rewrites into the viewer's own time zone when the browser
knows it (the league's time stays in the tooltip). Registered as a template builtin (league.settings)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timezone import get_current_timezone_name, localtime

register = template.Library()

DEFAULT_FORMAT = "M j, Y H:i"


def moment_text(value: datetime, fmt: str = DEFAULT_FORMAT) -> str:
    """``value`` in the league's time zone, with the zone's name: "Dec 3, 2026 14:05 UTC"."""
    return f"{date_format(localtime(value), fmt)} {date_format(localtime(value), 'T')}"


@register.simple_tag
def when(value: datetime | None, fmt: str = DEFAULT_FORMAT, both: bool = False) -> SafeString | str:
    """The ``<time>`` element for ``value`` ("—" without one). ``both``: keep the league's time visible and add the
    viewer's local time after it (for schedules), instead of replacing it."""
    if value is None:
        return "—"
    # Which parts the browser's rewrite shows, read from the format: weekday, year, seconds.
    parts = " ".join(name for name, char in (("weekday", "D"), ("year", "Y"), ("seconds", "s")) if char in fmt)
    return format_html('<time datetime="{}" data-local="{}" data-parts="{}" data-zone="{}">{}</time>',
                       value.isoformat(), "both" if both else "replace", parts, get_current_timezone_name(),
                       moment_text(value, fmt))
