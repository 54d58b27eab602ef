"""Sans-I/O protocol cores (after h11): bytes in, events out, replies to bytes.

Standard library only. Nothing here imports asyncio, socket, ssl or any other part of
Pillarbox; timeouts, TLS, credentials and storage are the caller's business.
"""
