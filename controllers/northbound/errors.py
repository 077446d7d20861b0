"""The northbound package's one exception hierarchy.

:class:`ApiError` is what the controller's api raises to answer a request with
an HTTP error; the others are faults of the server itself.
"""

from __future__ import annotations

from typing import Any, Mapping


class NorthboundServerError(Exception):
    """Base class of every error raised by :mod:`controllers.northbound`."""


class ApiError(NorthboundServerError):
    """A request the api refuses, answered with ``status`` and ``message``.

    Parameters
    ----------
    status : int
        HTTP status, 400..599: 400 malformed, 404 unknown, 409 already exists,
        422 infeasible or invalid (unknown node, infeasible constraint).
    message : str
        Shown to the user as is: name the value, what was expected, the fix.
    details : dict, optional
        JSON-serialisable facts for programs (the failed constraint, ...).

    Raises
    ------
    ValueError
        If ``status`` is not an HTTP error status or ``details`` not a dict.

    Examples
    --------
    >>> err = ApiError(404, "no policy named 'web'; list them with GET /policies")
    >>> err.status, str(err), err.details
    (404, "no policy named 'web'; list them with GET /policies", {})
    >>> ApiError(200, "fine")
    Traceback (most recent call last):
    ...
    ValueError: ApiError status=200 must be an int in 400..599 (an HTTP error status)
    """

    def __init__(self, status: int, message: str, details: Mapping[str, Any] | None = None):
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"ApiError status={status!r} must be an int in 400..599 (an HTTP error status)")
        if details is not None and not isinstance(details, Mapping):
            raise ValueError(f"ApiError details={details!r} must be a dict or None")
        super().__init__(message)
        self.status = status
        self.message = str(message)
        self.details = dict(details or {})


class ListenError(NorthboundServerError, OSError):
    """The REST server could not bind its address (port taken, bad host)."""


class SchemaError(NorthboundServerError):
    """The OpenAPI document is inconsistent or uses JSON Schema the checker lacks.

    A programming error in :mod:`controllers.northbound.openapi`, never a
    client's fault.
    """
