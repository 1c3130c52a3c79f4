"""Recording: the manager that decides what records, the segment index, playback, export."""
