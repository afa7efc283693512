"""Helpers for the report tests (text of an HTML page)."""

from __future__ import annotations

import html
import re


def visible_text(markup: str) -> str:
    """The text of an HTML document with tags removed, entities decoded and white space collapsed."""
    markup = re.sub(r"<script\b.*?</script>", " ", markup, flags=re.S)
    markup = re.sub(r"<style\b.*?</style>", " ", markup, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def squash(text: str) -> str:
    return " ".join(str(text).split())
