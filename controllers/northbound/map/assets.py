"""The map page's files: built from ``web/`` by ``scripts/setup.sh`` into ``build/web/``, served as they are.

``GET /map`` answers ``index.html``, ``GET /map/{asset}`` a file beside it
(``app.js``, ``app.css``). Only plain file names of that directory are
served: no path separators, no hidden files.

Examples
--------
>>> content_type("app.js"), content_type("index.html")
('text/javascript; charset=utf-8', 'text/html; charset=utf-8')
>>> asset("../secret")
Traceback (most recent call last):
...
controllers.northbound.errors.ApiError: no map asset '../secret'; GET /map loads the page and its assets
"""

from __future__ import annotations

import os
import re

from controllers.northbound.answers import Raw
from controllers.northbound.errors import ApiError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
#: Where ``npm run build`` in ``web/`` writes the page (``CPN_MAP_DIR`` overrides it).
BUILD_DIR = os.environ.get("CPN_MAP_DIR") or os.path.join(ROOT, "build", "web")
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json",
                 ".map": "application/json", ".png": "image/png", ".ico": "image/x-icon"}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
#: The page is rebuilt in place by the setup: browsers must ask again rather than keep an old copy.
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def content_type(name: str) -> str:
    """The media type of a file served under ``/map``, by its extension."""
    return CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")


def page(build_dir: str | None = None) -> Raw:
    """``GET /map``: the single-page app's ``index.html``.

    Raises
    ------
    ApiError
        404 naming the fix when the page was not built.
    """
    return _file("index.html", build_dir or BUILD_DIR)


def asset(name: str, build_dir: str | None = None) -> Raw:
    """``GET /map/{name}``: one file of the built page; 404 for anything else."""
    if not _NAME.fullmatch(name):
        raise ApiError(404, f"no map asset {name[:100]!r}; GET /map loads the page and its assets")
    return _file(name, build_dir or BUILD_DIR)


def _file(name: str, build_dir: str) -> Raw:
    path = os.path.join(build_dir, name)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        if name == "index.html":
            raise ApiError(404, f"the map page is not built ({path} is missing); run `sudo bash scripts/setup.sh`, "
                                "which runs `npm ci` and `npm run build` in web/") from None
        raise ApiError(404, f"no map asset {name!r}; GET /map loads the page and its assets") from None
    return Raw(data, content_type(name), _HEADERS)
