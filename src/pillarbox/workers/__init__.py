"""Several worker processes serving one Pillarbox (`[server] workers`, issue 18).

One Python process uses one core (the GIL), so the server runs N workers, each a whole
`App` on its own event loop, behind the same listening ports. This package holds what
makes them one server: the master that starts, watches and stops them, the hub that
carries the change bus between them (`store.api.StampingBus`), and the state they share
in memory (connection caps, sessions per account, verified credentials). Only `app.py`
wires it; services and front-ends know their own Protocols, never this package.
"""
