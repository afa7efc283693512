"""The contract of a statement-set plugin: contrast or control data that ``deception capture NAME`` records.

A statement set writes records in the format of a ``deception capture`` data file (see
`deception_core.capture.texts`), so a registered set and the file it would write capture to the
same dataset. Its parameters are a frozen attrs ``settings_class`` built from
``deception capture NAME --param KEY=VALUE`` by `deception_core.config.components.build`.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from deception_core.base.types import JSONObject


class StatementSet(abc.ABC):
    """A set of statements or dialogues to capture; ``records()`` gives them as plain dicts."""

    name: ClassVar[str]
    #: the frozen attrs class of this set's parameters (None when it takes none)
    settings_class: ClassVar[type | None] = None

    @abc.abstractmethod
    def records(self) -> list[JSONObject]:
        """The records, one per sample, with the fields of a ``deception capture`` data file."""
