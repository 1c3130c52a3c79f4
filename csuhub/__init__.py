"""csuhub: a plugin-driven hub for an urban video-supervision centre."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("csuhub")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
