"""The logbook (*main courante*): the centre's append-only shift journal, kept
in the audit chain so that ``csuhub audit verify`` covers it."""
