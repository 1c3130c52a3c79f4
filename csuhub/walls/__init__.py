"""Video walls: screens, their layouts and tile sources, the incident spotlight
rules, and the state a restart restores."""
