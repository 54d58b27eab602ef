"""What can go wrong when fetching from another server, in words fit for `fetch list`."""

from __future__ import annotations


class FetchError(Exception):
    """A failed run of one source; the message is shown to the user as it is."""

    auth_failure = False


class AuthenticationFailed(FetchError):
    """The other server refused the user name or password."""

    auth_failure = True


class RefusedAddress(FetchError):
    """The source resolves to an address we do not connect to."""


class InsecureConnection(FetchError):
    """TLS could not be had, or the server tried to get around it."""


class RemoteProtocolFailure(FetchError):
    """The other server broke its protocol (an oversized line, a reply we cannot read)."""
