"""Access and accounting: rate limits, usage counts, metrics, idempotency and the audit log.

Everything here plugs into the runner as filters (``async (call, proceed) -> result``), so it
applies to every protocol alike; :func:`mailroom.bootstrap.start` adds them in a fixed order
(see :mod:`mailroom.accounting.setup`). This package's ``__init__`` imports nothing, so that
front-ends may import :mod:`mailroom.accounting.metrics` without reaching the store.
"""
