"""What `deception run` prints on the console besides warnings.

The console shows warnings and errors (every level with ``--verbose``); ``run.log`` keeps
everything. A few INFO lines matter to the person waiting at the terminal: a judge call being
retried, a run resuming from its checkpoint. They are logged with ``extra=SHOW`` so the console
shows them at any verbosity.
"""

from __future__ import annotations

import logging

#: ``extra`` of a log record the console shows at any verbosity
SHOW = {"console": True}


class _ShownOnConsole(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or bool(getattr(record, "console", False))


def console_handler(verbose: bool) -> logging.Handler:
    """A stderr handler: DEBUG and up with ``verbose``, else warnings and the records marked `SHOW`."""
    handler = logging.StreamHandler()
    handler.setLevel(logging.DEBUG)
    handler.addFilter(_ShownOnConsole(logging.DEBUG if verbose else logging.WARNING))
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    return handler
