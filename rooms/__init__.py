"""The circle itself: pure decisions, no I/O.

Nothing here imports aiohttp, aiortc, SQLAlchemy or another Hearth package; every function
that depends on time takes ``now`` as an argument.
"""
