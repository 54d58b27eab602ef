"""Migration scripts have one version each, 1, 2, 3, ... without gaps.

Pins the runner's assumption: it skips every script whose version is not above the
schema's, so two scripts sharing a number (branches merged that both added "0004")
would silently never run the second one.
"""

from __future__ import annotations

from pillarbox.store.sqlite import schema


def test_versions_are_unique_and_consecutive() -> None:
    versions = [version for version, _ in schema.migrations()]
    assert versions == list(range(1, len(versions) + 1))
