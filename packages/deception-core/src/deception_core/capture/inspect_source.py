"""The statement set ``inspect``: the dialogues of an Inspect eval log, for `deception capture`.

``deception capture inspect --param path=LOG.eval --model M --output DIR`` records, for each
assistant message of each sample, the activations of the message as the reply to the messages
before it, so transcripts from any Inspect eval can be probed. ``--param replies=last`` takes only
each sample's last assistant message, ``replies=labelled`` only the focal utterances a
``deception export --format inspect`` log labelled (its labels come back with them). How messages
map to records: `deception_core.outputs.inspect_log`.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from deception_core.base.types import JSONObject
from deception_core.contracts.statements import StatementSet
from deception_core.outputs.inspect_log import REPLIES, read_inspect_records


@attrs.frozen
class InspectLogSettings:
    """The parameters of the ``inspect`` statement set (``--param KEY=VALUE``)."""

    #: the Inspect eval log to read (.eval or .json)
    path: str
    #: which assistant messages become samples: `all`, the `last` of each Inspect sample, or only those a
    #: `deception export --format inspect` log `labelled` (its focal utterances, with their labels)
    replies: str = attrs.field(default="all", validator=attrs.validators.in_(REPLIES))


class InspectLog(StatementSet):
    """The assistant messages of an Inspect eval log's samples, each with the messages before it."""

    name: ClassVar[str] = "inspect"
    settings_class: ClassVar[type | None] = InspectLogSettings

    def __init__(self, settings: InspectLogSettings) -> None:
        self.settings = settings

    def records(self) -> list[JSONObject]:
        return read_inspect_records(self.settings.path, self.settings.replies)
