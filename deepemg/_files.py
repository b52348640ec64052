"""Files written whole or not at all: the one way deepemg writes a file.

A reader never sees half a file, and after an error or Ctrl-C the path holds what it held
before: the file is written into a new hidden folder beside its path, flushed to disk, then
moved onto the path (``os.replace``, atomic on one file system). Writing by path, not by an
open descriptor, lets other writers (OpenSim's file adapters, ``numpy.savez``) write the file
themselves, and gives it the permissions of any new file (``tempfile.mkstemp`` would make it
readable by its owner only).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_whole"]


def write_whole(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(temporary)`` to write the file, then move it onto ``path`` whole.

    Parameters
    ----------
    path : path
        The file to write; its folder must exist. An existing file is replaced, only once the
        new one is complete.
    write : callable
        Writes the whole file at the path it is given (a file of that name in a new, empty
        hidden folder beside ``path``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        When ``write`` wrote no file, or the folder cannot take one; whatever ``write``
        raises propagates. In every case ``path`` is left as it was and nothing is left behind.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = write_whole(folder / "a.txt", lambda t: pathlib.Path(t).write_text("whole"))
    >>> path.read_text(), sorted(p.name for p in folder.iterdir())
    ('whole', ['a.txt'])
    """
    path = Path(path)
    folder = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = os.path.join(folder, path.name)
    try:
        write(temporary)
        if not os.path.isfile(temporary):
            raise OSError(f"nothing was written for '{path}'.")
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        with contextlib.suppress(OSError):
            os.rmdir(folder)
    return path
