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


#: JavaScript: per label, how many focal replies hold a token span whose background is not transparent
COLOURED_BY_LABEL = """(function () {
  var out = {};
  ["honest", "deceptive", "ambiguous"].forEach(function (label) {
    var turns = document.querySelectorAll('.turn.focal[data-label="' + label + '"]');
    var n = 0;
    for (var i = 0; i < turns.length; i++) {
      var spans = turns[i].querySelectorAll(".tok span");
      for (var j = 0; j < spans.length; j++) {
        var m = getComputedStyle(spans[j]).backgroundColor.match(/rgba?\\(([^)]*)\\)/);
        var parts = m ? m[1].split(",") : [];
        if (parts.length === 4 ? Number(parts[3]) > 0 : parts.length === 3) { n++; break; }
      }
    }
    out[label] = n;
  });
  return JSON.stringify(out);
})()"""
