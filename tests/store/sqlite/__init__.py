"""Tests of the SQLite backend's own behaviour (writer, migrations, crash safety).

What every backend must do is in `tests/store/test_contract.py`; these tests reach into
SQLite internals (the database file, PRAGMAs, the writer's batches) and run only here.
The fixtures of `tests/store/conftest.py` apply (pytest finds a parent's conftest).
"""
