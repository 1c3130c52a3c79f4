"""Who may do what: permissions and roles, principals, and (in later modules)
passwords, sessions, lockout, the audit chain's rules and privacy masks."""
