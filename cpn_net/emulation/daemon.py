"""The control socket of a running network: ``cpn status``, ``cpn link set``, ``cpn down``.

The process that booted the network (``cpn up``, in the foreground or detached)
serves one JSON request per connection on ``<run dir>/control.sock``:

=================================================  =======================================
request                                            reply
=================================================  =======================================
``{"op": "status"}``                               ``{"ok": true, "status": {...}}``
``{"op": "link_set", "a": .., "b": .., ...}``      ``{"ok": true, "settings": {...}}``
``{"op": "restart_controller"}``                   ``{"ok": true, "restart": {...}}``
``{"op": "down"}``                                 ``{"ok": true}`` then the network stops
=================================================  =======================================

Errors come back as ``{"ok": false, "error": "..."}``. Requests are served one
at a time: Mininet node shells are not safe to drive from two threads.
"""

from __future__ import annotations

import json
import os
import socket
import threading

CONTROL_SOCKET = "control.sock"
MAX_REQUEST_BYTES = 1 << 20
LINK_SETTINGS = ("delay_ms", "jitter_ms", "loss_pct", "rate_mbps", "unshaped", "down")


class ControlError(RuntimeError):
    """No network answers, or it refused the request."""


class ControlServer:
    def __init__(self, network, run_dir: str) -> None:
        self.network = network
        self.path = os.path.join(run_dir, CONTROL_SOCKET)
        self.stop_requested = threading.Event()
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, name="cpn-control", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop_requested.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                try:
                    request = json.loads(_read_line(conn))
                    reply = self.handle(request)
                except (ValueError, OSError, RecursionError) as err:
                    reply = {"ok": False, "error": f"bad request: {err}"}
                try:
                    conn.sendall(json.dumps(reply, default=str).encode() + b"\n")
                except OSError:
                    pass

    def handle(self, request: dict) -> dict:
        """Serve one decoded request; never raises, so the serving thread survives any input."""
        if not isinstance(request, dict):
            return {"ok": False, "error": f"request {request!r} must be a JSON object such as "
                                          '{"op": "status"}'}
        op = request.get("op")
        if op == "link_set":
            missing = [k for k in ("a", "b") if k not in request]
            if missing:
                return {"ok": False, "error": f"link_set needs key {missing[0]!r}: the site or router "
                                              "at each end of the link"}
        with self.lock:
            try:
                if op == "status":
                    return {"ok": True, "status": self.network.status()}
                if op == "link_set":
                    changes = {k: request.get(k) for k in LINK_SETTINGS if request.get(k) is not None}
                    settings = self.network.set_link(request["a"], request["b"], **changes)
                    return {"ok": True, "settings": settings}
                if op == "restart_controller":
                    return {"ok": True, "restart": self.network.restart_controller()}
                if op == "down":
                    self.stop_requested.set()
                    return {"ok": True}
            except KeyError as err:  # str() of a plain KeyError is the quoted repr
                return {"ok": False, "error": str(err.args[0]) if err.args else repr(err)}
            except Exception as err:  # the network stays up; the caller sees why
                return {"ok": False, "error": str(err)}
        return {"ok": False, "error": f"op={op!r} must be one of status, link_set, restart_controller, down"}

    def close(self) -> None:
        self.stop_requested.set()
        try:
            self.sock.close()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError("request larger than 1 MiB")
    return data


def call(run_dir: str, request: dict, timeout_s: float = 60.0) -> dict:
    """Send one request to the running network; raises ControlError when none answers."""
    path = os.path.join(run_dir, CONTROL_SOCKET)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError) as err:
        sock.close()
        raise ControlError(f"no cpn network is running (no answer on {path}); start one with `cpn up FILE`") \
            from err
    except PermissionError as err:
        # The socket is root's (mode 0600): a user without sudo gets EACCES.
        sock.close()
        raise ControlError(f"permission denied on {path}: the running network belongs to root; "
                           "run the command with sudo") from err
    with sock:
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = json.loads(_read_line(sock) or b"{}")
        except TimeoutError as err:
            raise ControlError(f"the network did not answer on {path} within {timeout_s:g} s; "
                               "if it hangs, `cpn clean --force` removes it") from err
        except OSError as err:
            raise ControlError(f"the network stopped answering on {path}: {err}") from err
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "the network gave no reply"))
    return reply
