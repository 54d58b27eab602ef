"""The parser's one dispatch table, joined from the per-family grammar modules.

Pins that splitting the grammar by command family lost no command and added none, that
every command event has a parser under its name, and that a name claimed by two families
is refused when the table is built instead of one parser silently shadowing the other.
"""

from __future__ import annotations

import pytest

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap import parser
from pillarbox.proto.imap.grammar import (
    compress,
    context,
    fetch,
    mailboxes,
    messages,
    notify,
    quota,
    replace,
    search,
    session,
    sort,
    unauthenticate,
)

EXPECTED = {
    "APPEND",
    "AUTHENTICATE",
    "CANCELUPDATE",
    "CAPABILITY",
    "CHECK",
    "CLOSE",
    "COMPRESS",
    "COPY",
    "CREATE",
    "DELETE",
    "ENABLE",
    "EXAMINE",
    "EXPUNGE",
    "FETCH",
    "GETQUOTA",
    "GETQUOTAROOT",
    "ID",
    "IDLE",
    "LIST",
    "LOGIN",
    "LOGOUT",
    "LSUB",
    "MOVE",
    "NAMESPACE",
    "NOOP",
    "NOTIFY",
    "RENAME",
    "REPLACE",
    "SEARCH",
    "SELECT",
    "SETQUOTA",
    "SORT",
    "STARTTLS",
    "STATUS",
    "STORE",
    "SUBSCRIBE",
    "THREAD",
    "UID COPY",
    "UID EXPUNGE",
    "UID FETCH",
    "UID MOVE",
    "UID REPLACE",
    "UID SEARCH",
    "UID SORT",
    "UID STORE",
    "UID THREAD",
    "UNAUTHENTICATE",
    "UNSELECT",
    "UNSUBSCRIBE",
}


def test_known_commands_are_the_families_tables() -> None:
    """The joined table is exactly the commands the server knows, each from one family."""
    families = [
        session,
        mailboxes,
        messages,
        search,
        fetch,
        compress,
        sort,
        unauthenticate,
        notify,
        quota,
        replace,
        context,
    ]
    assert parser.KNOWN_COMMANDS == EXPECTED
    assert sum(len(f.PARSERS) for f in families) == len(EXPECTED)


def test_every_command_event_has_a_parser() -> None:
    """Each command dataclass can come out of `parse_command` under its own NAME."""
    assert {cls.NAME for cls in c.ALL_COMMANDS} <= parser.KNOWN_COMMANDS


def test_a_name_in_two_families_is_refused() -> None:
    """Joining tables that both claim a command raises rather than keeping either."""
    with pytest.raises(ValueError, match="NOOP"):
        parser._join(session.PARSERS, {"NOOP": session.PARSERS["NOOP"]})
