"""The audit trail as evidence: its hash chain, anchors, exports and figures.

The SQL that writes and reads ``audit_log`` lives in :mod:`csuhub.store.audit`;
this package holds what the ethics committee relies on: how an entry is hashed
(:mod:`.chain`, documented in docs/audit.md so it can be re-implemented), which
class an action belongs to (:mod:`.actions`), the write-once anchors of the
chain head (:mod:`.anchors`), the exports (:mod:`.export`) and the figures
(:mod:`.ethics`). This module imports nothing, so the store can use the chain
without a cycle.
"""
