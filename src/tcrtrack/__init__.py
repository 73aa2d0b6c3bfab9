"""tcrtrack: find the T-cell clones a cell therapy sets in motion."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tcrtrack")
except PackageNotFoundError:  # a source tree that is not installed (e.g. a job in the --sdm conda env)
    import re
    from pathlib import Path

    _project = Path(__file__).resolve().parents[2] / "pyproject.toml"
    _found = re.search(r'^version = "([^"]+)"', _project.read_text(), re.M) if _project.is_file() else None
    __version__ = _found.group(1) if _found else "0.0.0+unknown"

__all__ = ["__version__"]
