"""Answers of the REST server other than JSON: bytes with their media type, and streams.

A :class:`~controllers.northbound.rest.Route` normally returns JSON data; it may
return a :class:`Raw` (the map page and its assets, the Prometheus text) or a
:class:`Stream` (Server-Sent Events), which the server sends as they are.

Examples
--------
>>> answer = Raw(b"ok\\n", "text/plain; charset=utf-8")
>>> answer.content_type, answer.headers
('text/plain; charset=utf-8', {})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Raw:
    """A whole answer of ``content_type``: ``body`` as is, with extra ``headers``."""

    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


class Stream:
    """An answer written over time by :meth:`serve`, which owns the connection until it returns.

    ``serve`` may raise :class:`~controllers.northbound.errors.ApiError` before it
    writes anything; the server then answers the error as usual.
    """

    def serve(self, handler: Any) -> None:
        """Write the status line, headers and body to ``handler`` (a ``BaseHTTPRequestHandler``)."""
        raise NotImplementedError
