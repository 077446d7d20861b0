"""A small client of the controller's REST northbound, for the ``cpn`` CLI.

Standard library only (``urllib``). Every failure becomes a
:class:`NorthboundError` carrying the server's own message, so the CLI prints
what the controller said: ``no policy named 'web'; list them with GET
/policies``. Status 0 means no HTTP answer at all (nothing listening, or no
answer in time).

The API itself is described by the OpenAPI document the controller serves at
``GET /openapi.json``.

Examples
--------
>>> client = NorthboundClient("http://127.0.0.1:1/")
>>> client.base_url
'http://127.0.0.1:1'
>>> client.status()
Traceback (most recent call last):
...
cpn_net.northbound_client.NorthboundError: controller not reachable at http://127.0.0.1:1; is a network
running? (`cpn up`)
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8181
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_TIMEOUT_S = 30.0  # installing a policy touches routers over netlink: seconds, not milliseconds


PAGE = 1000  # the most items GET /policies and GET /slices answer per request

class NorthboundError(Exception):
    """The controller refused a request, failed, or could not be reached.

    Parameters
    ----------
    status : int
        HTTP status of the answer; 0 when there was none.
    message : str
        The server's message (or ours when it did not answer).
    details : dict, optional
        The server's ``details``.

    Examples
    --------
    >>> err = NorthboundError(409, "policy 'web' already exists")
    >>> err.status, str(err), err.details
    (409, "policy 'web' already exists", {})
    """

    def __init__(self, status: int, message: str, details: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = dict(details or {})


class NorthboundClient:
    """Talk to the REST northbound at ``base_url``.

    Parameters
    ----------
    base_url : str
        e.g. ``http://127.0.0.1:8181``; a trailing slash is ignored.
    timeout_s : float
        How long to wait for each answer.

    Examples
    --------
    >>> NorthboundClient().base_url
    'http://127.0.0.1:8181'
    """

    def __init__(self, base_url: str = DEFAULT_URL, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def status(self) -> dict:
        """The controller's status (``GET /status``)."""
        return self.request("GET", "/status")

    def topology(self) -> dict:
        """Sites and links as the controller sees them (``GET /topology``)."""
        return self.request("GET", "/topology")

    def list_policies(self) -> list[dict]:
        """Every installed policy (``GET /policies``, page after page)."""
        return self._every_page("/policies")

    def _every_page(self, path: str) -> list:
        """All items of a paged list: the server answers at most PAGE of them per request."""
        items, offset = [], 0
        while True:
            page = self.request("GET", f"{path}?limit={PAGE}&offset={offset}")
            items += page
            if len(page) < PAGE:
                return items
            offset += len(page)

    def get_policy(self, name: str) -> dict:
        """One installed policy (``GET /policies/{name}``); 404 if unknown."""
        return self.request("GET", _policy_path(name))

    def add_policy(self, policy: Mapping[str, Any]) -> dict:
        """Install a policy (``POST /policies``) and return it with its path and segments."""
        return self.request("POST", "/policies", policy)

    def steering(self) -> dict:
        """Compute-aware steering state (``GET /steering``)."""
        return self.request("GET", "/steering")

    def set_steering_policy(self, policy: str) -> dict:
        """Switch the selector's policy (``PUT /steering``)."""
        return self.request("PUT", "/steering", {"policy": policy})

    def telemetry(self) -> dict:
        """The live network view (``GET /telemetry``)."""
        return self.request("GET", "/telemetry")

    def add_policies(self, policies: list) -> dict:
        """Install many policies in one request (``POST /policy-batches``): ``{"installed", "refused"}``."""
        return self.request("POST", "/policy-batches", {"policies": list(policies)})

    def delete_policy(self, name: str) -> dict:
        """Remove a policy (``DELETE /policies/{name}``) and return what was removed."""
        return self.request("DELETE", _policy_path(name))

    def list_slices(self) -> list[dict]:
        """Every slice in force, then every refused declaration (``GET /slices``, page after page)."""
        return self._every_page("/slices")

    def get_slice(self, name: str) -> dict:
        """One slice (``GET /slices/{name}``); 404 if unknown."""
        return self.request("GET", _named_path("/slices", name))

    def add_slice(self, spec: Mapping[str, Any]) -> dict:
        """Admit and realise a slice (``POST /slices``) and return it with its paths.

        A refusal by admission control is a :class:`NorthboundError` with
        status 409 whose ``details`` name the bottleneck (``reason``,
        ``link``, ``residual_mbps``, ``shortfall_mbps``).
        """
        return self.request("POST", "/slices", spec)

    def delete_slice(self, name: str) -> dict:
        """Remove a slice (``DELETE /slices/{name}``) and return what was removed."""
        return self.request("DELETE", _named_path("/slices", name))

    def slice_status(self) -> dict:
        """Per-slice measured delay and loss against the bounds (``GET /slice-status``)."""
        return self.request("GET", "/slice-status")

    def link_event(self, a: str, b: str, up: bool) -> dict:
        """Tell the controller the link between sites ``a`` and ``b`` went up or down."""
        return self.request("POST", "/events/link", {"a": a, "b": b, "up": up})

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request and decode the JSON answer.

        Parameters
        ----------
        method : str
        path : str
            Starts with ``/``; path segments already quoted.
        body : object, optional
            Sent as JSON when not None.

        Returns
        -------
        object
            The decoded JSON answer.

        Raises
        ------
        NorthboundError
            On an error status (with the server's message), an answer that is
            not JSON, no answer in time, or nothing listening (status 0).
        """
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                return _decode(answer.status, answer.read(), method, path)
        except urllib.error.HTTPError as err:
            with err:
                raise _from_error_answer(err.code, err.read(), err.reason) from err
        except (TimeoutError, socket.timeout) as err:
            raise NorthboundError(0, f"controller at {self.base_url} did not answer {method} {path} within "
                                     f"{self.timeout_s:g} s; it may be busy or hung (see its log)") from err
        except (urllib.error.URLError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise NorthboundError(0, f"controller at {self.base_url} did not answer {method} {path} within "
                                         f"{self.timeout_s:g} s; it may be busy or hung (see its log)") from err
            raise NorthboundError(0, f"controller not reachable at {self.base_url}; is a network running? "
                                     "(`cpn up`)", {"reason": str(reason)}) from err


def _named_path(collection: str, name: str) -> str:
    """``collection/name`` with ``name`` quoted as one path segment.

    Examples
    --------
    >>> _named_path("/slices", "a/b")
    '/slices/a%2Fb'
    """
    return f"{collection}/" + urllib.parse.quote(name, safe="")


def _policy_path(name: str) -> str:
    return _named_path("/policies", name)


def _decode(status: int, raw: bytes, method: str, path: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as err:
        raise NorthboundError(status, f"controller answered {method} {path} with status {status} but the body is "
                                      f"not JSON ({err}); is something else listening on that port?") from err


def _from_error_answer(status: int, raw: bytes, reason: str) -> NorthboundError:
    try:
        error = json.loads(raw)["error"]
        return NorthboundError(status, str(error["message"]), error.get("details") or {})
    except (ValueError, KeyError, TypeError):
        text = raw.decode("utf-8", "replace").strip()[:200]
        return NorthboundError(status, f"HTTP {status} {reason}" + (f": {text}" if text else ""))
