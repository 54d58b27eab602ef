"""SEARCH and the result options it may ask for.

SEARCH / UID SEARCH (RFC 9051 §6.4.4), ESEARCH result options (RFC 4731 §3.1) and SAVE
(SEARCHRES, RFC 5182). The search keys themselves are not defined here: they are the
`pillarbox.model.search` AST, shared with services and the store, so a parsed SEARCH goes
down to the store unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from pillarbox.model.search import SearchAnd
from pillarbox.proto.imap.commands.base import NO_CRITERIA, Command

ESEARCH_OPTIONS: Final = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
"""The RETURN options SEARCH accepts (RFC 4731 §3.1; SAVE from RFC 5182)."""


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731), SEARCHRES (RFC 5182).

    `criteria` is always a `SearchAnd` of the top-level keys. `charset` is upper-cased, None
    when absent. `return_options` is None without a RETURN clause (answer ``* SEARCH`` in
    IMAP4rev1, ``* ESEARCH`` in IMAP4rev2), else the upper-cased options (MIN MAX ALL COUNT
    SAVE; ``()`` means ALL per RFC 4731 §3.1).
    """

    NAME: ClassVar[str] = "SEARCH"
    uid: bool = False
    charset: str | None = None
    criteria: SearchAnd = NO_CRITERIA
    return_options: tuple[str, ...] | None = None
