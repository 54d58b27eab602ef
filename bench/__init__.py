"""Pillarbox benchmarks: Pillarbox against Postfix + Dovecot on the same machine.

``python -m bench [--reference] [--quick] [--workloads a,b] [--runs N] [--json FILE]``.
Layout: ``cli`` (arguments, running the sides, output), ``servers`` (endpoint and process
contract), ``pillarbox_server`` and ``reference`` (the two sides), ``wire`` (lean protocol
clients), ``corpus`` (deterministic messages), ``report`` (statistics, JSON, table),
``workloads/`` (one module per workload, registered in ``workloads/__init__.py``).
"""
