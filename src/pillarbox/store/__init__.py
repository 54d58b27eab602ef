"""The mail store: accounts, mailboxes, messages, blobs and the outbound queue.

Services see only `store.api` (the contract) and `store.errors`; values are in
`pillarbox.model`. The concrete backends (`sqlite`, later `postgres`) are chosen in
`app.py` from `[server] store`; the change bus they publish to is handed to them there.
"""
