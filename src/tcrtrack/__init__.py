"""tcrtrack: find the T-cell clones a cell therapy sets in motion."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tcrtrack")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
