"""Reading topology files, with every failure turned into a :class:`TopologyError`."""

from __future__ import annotations

import os

from cpn_net.model.errors import FILE_KEY, TOP_KEY, Problem, ProblemLog, TopologyError


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


#: Numbers a topology holds (delays, rates, ids, coordinates) are floats at heart: larger ones are mistakes.
_LARGEST_NUMBER = 1e308


def check_document(log: ProblemLog, document: object) -> None:
    """Record what no field of a parsed YAML or JSON document can hold, before the fields are read.

    Two things a parser hands over that the field checks would otherwise trip
    on: an integer too large for a float (``10**400``; delays, rates and ids
    are all far smaller), and a structure that contains itself (a YAML alias
    inside its own anchor, ``&a [*a]``). The walk is iterative, so any depth
    the parser accepted is walked.

    Parameters
    ----------
    log : ProblemLog
        Gets one problem per offending value, keyed by its path (``sites[0].id``).
    document : object
        Decoded YAML or JSON.

    Examples
    --------
    >>> log = ProblemLog("t.yaml")
    >>> loop = []
    >>> loop.append(loop)
    >>> check_document(log, {"sites": [{"id": 10 ** 400}], "links": loop})
    >>> for p in log.problems: print(p)
    t.yaml: sites[0].id: an integer of 401 digits is too large; give a number below 1e308
    t.yaml: links[0]: refers to a list that contains it (a YAML alias inside its own anchor); write the value out
    """
    stack: list[tuple[object, str, frozenset[int]]] = [(document, "", frozenset())]
    while stack:
        value, path, inside = stack.pop()
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _LARGEST_NUMBER:
            digits = len(str(abs(value))) if abs(value).bit_length() < 14_000 else "over 4300"
            log.add(path or TOP_KEY, f"an integer of {digits} digits is too large", "give a number below 1e308")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if id(value) in inside:
            kind = "mapping" if isinstance(value, dict) else "list"
            log.add(path or TOP_KEY, f"refers to a {kind} that contains it (a YAML alias inside its own anchor)",
                    "write the value out")
            continue
        inside = inside | {id(value)}
        items = value.items() if isinstance(value, dict) else enumerate(value)
        children = [(item, f"{path}[{key}]" if isinstance(value, list) else
                     (f"{path}.{key}" if path else str(key)), inside) for key, item in items]
        stack.extend(reversed(children))
