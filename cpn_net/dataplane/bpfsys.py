"""The bpf(2) system call from Python (ctypes): pinned maps and program test runs.

Just what cpn_net needs, with no compiled extension and no process per update:
``BPF_OBJ_GET`` on a pinned map or program, element update / delete / lookup /
iteration, ``BPF_OBJ_GET_INFO_BY_FD`` to check a map's key and value sizes
against what the caller encodes, and ``BPF_PROG_TEST_RUN`` to run a program on
a packet (unit tests, cost figures). Needs root (CAP_BPF / CAP_SYS_ADMIN).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine(), 321)

BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_PROG_TEST_RUN = 10
BPF_OBJ_GET = 7
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_ANY = 0
BPF_F_RDONLY = 1 << 3

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class BpfError(OSError):
    """A bpf(2) call failed; the message names the object and the operation."""


def _call(cmd: int, attr: ctypes.Array, what: str) -> int:
    rc = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if rc < 0:
        err = ctypes.get_errno()
        raise BpfError(err, f"{what}: {os.strerror(err)}")
    return rc


def _attr() -> ctypes.Array:
    return (ctypes.c_uint8 * 128)()


def _put(attr, offset: int, fmt_size: int, value: int) -> None:
    ctypes.memmove(ctypes.addressof(attr) + offset, int(value).to_bytes(fmt_size, "little"), fmt_size)


def _ptr(buffer) -> int:
    return ctypes.addressof(buffer) if buffer is not None else 0


def obj_get(path: str) -> int:
    """A file descriptor of the pinned object at ``path``."""
    attr = _attr()
    name = ctypes.create_string_buffer(path.encode())
    _put(attr, 0, 8, _ptr(name))
    return _call(BPF_OBJ_GET, attr, f"open pinned {path}")


class PinnedMap:
    """One pinned BPF map, opened once; raw bytes in and out.

    Parameters
    ----------
    path : str
        The pin (``.../maps/<name>``).
    key_size, value_size : int, optional
        Checked against the map's own sizes when given: a stale object (another
        layout) is refused by name instead of corrupting entries.
    """

    def __init__(self, path: str, key_size: int | None = None, value_size: int | None = None) -> None:
        self.path = path
        self.fd = obj_get(path)
        info = self.info()
        self.key_size, self.value_size = info["key_size"], info["value_size"]
        self.max_entries = info["max_entries"]
        for name, want, have in (("key", key_size, self.key_size), ("value", value_size, self.value_size)):
            if want is not None and want != have:
                os.close(self.fd)
                raise BpfError(errno.EINVAL, f"map {path}: {name} size {have}, expected {want}: the pinned "
                               "programs are from another build; restart the network (cpn down, cpn up)")

    def info(self) -> dict:
        info = (ctypes.c_uint8 * 88)()
        attr = _attr()
        _put(attr, 0, 4, self.fd)
        _put(attr, 4, 4, ctypes.sizeof(info))
        _put(attr, 8, 8, _ptr(info))
        _call(BPF_OBJ_GET_INFO_BY_FD, attr, f"map {self.path}: info")
        raw = bytes(info)
        return {"type": int.from_bytes(raw[0:4], "little"), "id": int.from_bytes(raw[4:8], "little"),
                "key_size": int.from_bytes(raw[8:12], "little"), "value_size": int.from_bytes(raw[12:16], "little"),
                "max_entries": int.from_bytes(raw[16:20], "little")}

    def _buffers(self, key: bytes, value: bytes | None = None):
        if len(key) != self.key_size:
            raise BpfError(errno.EINVAL, f"map {self.path}: key of {len(key)} bytes, the map takes {self.key_size}")
        kbuf = (ctypes.c_uint8 * self.key_size).from_buffer_copy(key)
        vbuf = None
        if value is not None:
            if len(value) != self.value_size:
                raise BpfError(errno.EINVAL,
                               f"map {self.path}: value of {len(value)} bytes, the map takes {self.value_size}")
            vbuf = (ctypes.c_uint8 * self.value_size).from_buffer_copy(value)
        return kbuf, vbuf

    def update(self, key: bytes, value: bytes) -> None:
        kbuf, vbuf = self._buffers(key, value)
        attr = _attr()
        _put(attr, 0, 4, self.fd)
        _put(attr, 8, 8, _ptr(kbuf))
        _put(attr, 16, 8, _ptr(vbuf))
        _put(attr, 24, 8, BPF_ANY)
        _call(BPF_MAP_UPDATE_ELEM, attr, f"map {self.path}: update {key.hex()}")

    def delete(self, key: bytes, missing_ok: bool = True) -> bool:
        kbuf, _ = self._buffers(key)
        attr = _attr()
        _put(attr, 0, 4, self.fd)
        _put(attr, 8, 8, _ptr(kbuf))
        try:
            _call(BPF_MAP_DELETE_ELEM, attr, f"map {self.path}: delete {key.hex()}")
        except BpfError as err:
            if missing_ok and err.errno == errno.ENOENT:
                return False
            raise
        return True

    def lookup(self, key: bytes, value_size: int | None = None) -> bytes | None:
        """The value at ``key`` (None if absent). Per-CPU maps: pass the whole buffer's size."""
        kbuf, _ = self._buffers(key)
        vbuf = (ctypes.c_uint8 * (value_size or self.value_size))()
        attr = _attr()
        _put(attr, 0, 4, self.fd)
        _put(attr, 8, 8, _ptr(kbuf))
        _put(attr, 16, 8, _ptr(vbuf))
        try:
            _call(BPF_MAP_LOOKUP_ELEM, attr, f"map {self.path}: lookup {key.hex()}")
        except BpfError as err:
            if err.errno == errno.ENOENT:
                return None
            raise
        return bytes(vbuf)

    def keys(self) -> list[bytes]:
        out = []
        key = None
        while True:
            nbuf = (ctypes.c_uint8 * self.key_size)()
            attr = _attr()
            _put(attr, 0, 4, self.fd)
            kbuf = None if key is None else (ctypes.c_uint8 * self.key_size).from_buffer_copy(key)
            _put(attr, 8, 8, _ptr(kbuf))
            _put(attr, 16, 8, _ptr(nbuf))
            try:
                _call(BPF_MAP_GET_NEXT_KEY, attr, f"map {self.path}: next key")
            except BpfError as err:
                if err.errno == errno.ENOENT:
                    return out
                raise
            key = bytes(nbuf)
            out.append(key)

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k in self.keys() if (v := self.lookup(k)) is not None]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def percpu_sum(raw: bytes, value_size: int = 8) -> int:
    """The sum over CPUs of one per-CPU u64 value as ``lookup`` returns it."""
    step = (value_size + 7) // 8 * 8
    return sum(int.from_bytes(raw[i:i + value_size], "little") for i in range(0, len(raw), step))


def possible_cpus() -> int:
    """How many CPUs per-CPU maps hold values for (``/sys/devices/system/cpu/possible``)."""
    with open("/sys/devices/system/cpu/possible") as handle:
        text = handle.read().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


def test_run(prog_fd: int, packet: bytes, *, mark: int = 0, ingress_ifindex: int = 0, ifindex: int = 0,
             repeat: int = 1) -> tuple[int, bytes, int, dict]:
    """Run a tc program on ``packet`` (``BPF_PROG_TEST_RUN``).

    Returns (the program's return code, the packet it left, the mean ns per run,
    the ``__sk_buff`` fields mark and ifindex it left).
    """
    data_in = (ctypes.c_uint8 * len(packet)).from_buffer_copy(packet)
    data_out = (ctypes.c_uint8 * (len(packet) + 512))()
    ctx_in = (ctypes.c_uint8 * 192)()  # struct __sk_buff
    # __sk_buff: len 0, pkt_type 4, mark 8, queue_mapping 12, protocol 16, vlan_present 20,
    # vlan_tci 24, vlan_proto 28, priority 32, ingress_ifindex 36, ifindex 40
    _put(ctx_in, 8, 4, mark)
    _put(ctx_in, 36, 4, ingress_ifindex)
    _put(ctx_in, 40, 4, ifindex)
    ctx_out = (ctypes.c_uint8 * 192)()
    attr = _attr()
    _put(attr, 0, 4, prog_fd)
    _put(attr, 8, 4, len(packet))        # data_size_in
    _put(attr, 12, 4, len(data_out))     # data_size_out
    _put(attr, 16, 8, _ptr(data_in))
    _put(attr, 24, 8, _ptr(data_out))
    _put(attr, 32, 4, repeat)
    _put(attr, 40, 4, ctypes.sizeof(ctx_in))   # ctx_size_in
    _put(attr, 44, 4, ctypes.sizeof(ctx_out))  # ctx_size_out
    _put(attr, 48, 8, _ptr(ctx_in))
    _put(attr, 56, 8, _ptr(ctx_out))
    _call(BPF_PROG_TEST_RUN, attr, "program test run")
    raw = bytes(attr)
    retval = int.from_bytes(raw[4:8], "little")
    size_out = int.from_bytes(raw[12:16], "little")
    duration = int.from_bytes(raw[36:40], "little")
    ctx = bytes(ctx_out)
    fields = {"mark": int.from_bytes(ctx[8:12], "little"), "ifindex": int.from_bytes(ctx[40:44], "little")}
    return retval, bytes(data_out)[:size_out], duration, fields
