"""Cameras: the camera manager, adoption and health checks, PTZ and discovery."""
