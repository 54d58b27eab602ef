"""Parse function of UNAUTHENTICATE (RFC 8437 §4: ``command-auth =/ "UNAUTHENTICATE"``;
``command-select =/ "UNAUTHENTICATE"``): no arguments."""

from __future__ import annotations

from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.reader import CommandParser, no_arguments

PARSERS: Final[dict[str, CommandParser]] = {"UNAUTHENTICATE": no_arguments(c.Unauthenticate)}
