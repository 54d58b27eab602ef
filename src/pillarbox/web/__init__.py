"""The webmail: a front-end over HTTP, like `server/` is over IMAP, POP3 and SMTP.

Server-rendered pages (Starlette, Jinja2) on the same services and store as the mail
protocols, served by Hypercorn on the process's one event loop (`listener`). Pages:
`signin`, `folders`, `reading`, `compose`; what they share: `context`; security
headers: `headers`; sessions: `sessions`; HTML and text made safe: `html_clean`.

Must not: import the store or another front-end (tests/test_layers.py).
"""
