"""The hub's HTTP side: app factory, authentication, server lifecycle."""
