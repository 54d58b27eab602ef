"""Outbound delivery: the queue runner, MX resolution and the SMTP client (see runner.py)."""
