"""Cameras: the registry of known cameras and the discovery orchestration."""
