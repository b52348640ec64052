"""Where simulated data sets are kept between calls."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["cache_key", "get_data_home"]


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Folder for cached data sets: ``data_home``, else ``$DEEPEMG_DATA``, else
    ``~/.cache/deepemg`` (created if needed)."""
    folder = Path(data_home or os.environ.get("DEEPEMG_DATA") or Path.home() / ".cache" / "deepemg")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cache_key(name: str, **arguments) -> str:
    """A file name that changes with every argument (and with the generator's version)."""
    text = json.dumps(arguments, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.joblib"
