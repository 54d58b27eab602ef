"""The mail store: accounts, mailboxes, messages, blobs, queue and change bus.

Protocol code sees only `store.api`, `store.model` and `store.errors`; the concrete
backends (`sqlite`, later `postgres`) are chosen in `app.py` / `cli.py`.
"""
