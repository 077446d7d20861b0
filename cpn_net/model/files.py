"""Reading topology files, with every failure turned into a :class:`TopologyError`."""

from __future__ import annotations

import os

from cpn_net.model.errors import FILE_KEY, Problem, TopologyError


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of ``path``; a missing, unreadable or empty file is a TopologyError.

    Examples
    --------
    >>> read_bytes("no/such.yaml")
    Traceback (most recent call last):
    ...
    cpn_net.model.errors.TopologyError: no/such.yaml: (file): no such file; check the path (relative paths start at ...)
    """
    file = os.fspath(path)
    try:
        with open(file, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as err:
        raise _error(file, "no such file", f"check the path (relative paths start at {os.getcwd()})") from err
    except IsADirectoryError as err:
        raise _error(file, "is a directory", "give the path of a topology file") from err
    except OSError as err:
        raise _error(file, f"cannot be read: {err.strerror}", "check its permissions") from err
    if not data.strip():
        raise _error(file, "the file is empty", "write a topology into it (see cpn_net.model.schema)")
    return data


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of ``path`` (see :func:`read_bytes`)."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _error(os.fspath(path), f"is not UTF-8 text (byte {err.start})", "save the file as UTF-8") from err


def _error(file: str, message: str, fix: str) -> TopologyError:
    return TopologyError([Problem(file, FILE_KEY, message, fix)])
