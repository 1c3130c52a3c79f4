"""Incidents: what a call (or an operator) opens, with its location, its nearest
cameras, its bookmarks and the footage it protects; and the contract the call
lines report through (``calls``)."""
