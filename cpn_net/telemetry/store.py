"""The telemetry store: the latest delay, jitter and loss per link, node and policy.

Collectors feed it loss per block (:mod:`cpn_net.telemetry.altmark`) and
delay estimates (:mod:`cpn_net.telemetry.delay`); :meth:`TelemetryStore.view`
returns the network view at a given time, each value with where it came
from (the block, the number of samples) and its age. Ages are computed
from the ``now_s`` the caller passes, never from a clock read here.

Subjects: links are directed (``r1->r4``), nodes by name (``r1``),
policies by the name the controller gave them. Missing values are None
(JSON ``null``), never -1.

Examples
--------
>>> from cpn_net.telemetry.delay import DelayEstimate
>>> store = TelemetryStore()
>>> store.record_loss(LossReading("r1->r4", "link", block_index=7, block_end_s=8.0,
...                               lost_packets=3, sent_packets=300, loss_pct=1.0))
True
>>> store.record_delay("link", DelayEstimate("r1->r4", 10.2, 0.4, 20, 5.0, 0.1, 8.3, 10.1, 9.8, 11.0, 0.3))
True
>>> link = store.view(now_s=9.0).links["r1->r4"]
>>> link.loss_pct, link.loss_block, link.loss_age_s, link.delay_ms, link.delay_age_s
(1.0, 7, 1.0, 10.2, 0.7)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cpn_net.telemetry.altmark import AltMarkBlock, BlockLoss, HopLoss, locate_hop
from cpn_net.telemetry.delay import DelayEstimate
from cpn_net.telemetry.errors import TelemetryValueError

SCHEMA = "cpn_net.telemetry.view"
SCHEMA_VERSION = 1
KINDS = ("link", "node", "policy")
_SECTIONS = {"link": "links", "node": "nodes", "policy": "policies"}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise TelemetryValueError(f"kind={kind!r} must be one of {KINDS}")


@dataclass(frozen=True)
class LossReading:
    """Loss of one element in one alternate-marking block."""

    subject: str
    kind: str
    block_index: int
    block_end_s: float
    lost_packets: int
    sent_packets: int
    loss_pct: float | None

    def __post_init__(self) -> None:
        _check_kind(self.kind)

    @classmethod
    def from_hop(cls, hop: HopLoss, block: AltMarkBlock) -> LossReading | None:
        """The reading for the element between a hop's points; None if the hop is invalid.

        Examples
        --------
        >>> from cpn_net.telemetry.altmark import block_at
        >>> LossReading.from_hop(HopLoss("r1-eth1:in", "r1-eth2:out", 2, 1.0, 200), block_at(3)).subject
        'r1'
        """
        if hop.lost_packets is None or hop.upstream_packets is None:
            return None
        kind, subject = locate_hop(hop.upstream_point, hop.downstream_point)
        return cls(subject, kind, block.index, block.end_s, hop.lost_packets, hop.upstream_packets, hop.loss_pct)


@dataclass(frozen=True)
class ElementView:
    """What the network view knows about one link, node or policy."""

    subject: str
    kind: str
    delay_ms: float | None = None
    jitter_ms: float | None = None
    delay_samples: int | None = None
    delay_age_s: float | None = None
    lost_packets: int | None = None
    sent_packets: int | None = None
    loss_pct: float | None = None
    loss_block: int | None = None
    loss_age_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NetworkView:
    """The telemetry store's content at ``now_s``, by kind then subject."""

    now_s: float
    elements: tuple[ElementView, ...]

    def _of(self, kind: str) -> dict[str, ElementView]:
        return {e.subject: e for e in self.elements if e.kind == kind}

    @property
    def links(self) -> dict[str, ElementView]:
        return self._of("link")

    @property
    def nodes(self) -> dict[str, ElementView]:
        return self._of("node")

    @property
    def policies(self) -> dict[str, ElementView]:
        return self._of("policy")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with schema name and version.

        Examples
        --------
        >>> NetworkView(5.0, (ElementView("r1", "node", loss_pct=0.0),)).to_dict()["nodes"]["r1"]["loss_pct"]
        0.0
        """
        out: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "now_s": self.now_s}
        for kind in KINDS:
            out[_SECTIONS[kind]] = {e.subject: e.to_dict() for e in self.elements if e.kind == kind}
        return out


class TelemetryStore:
    """Latest loss reading and delay estimate per (kind, subject).

    A reading replaces the stored one only if it is newer: a later block
    for loss, a later last sample for delay. Late or duplicate deliveries
    are thus harmless.
    """

    def __init__(self) -> None:
        self._loss: dict[tuple[str, str], LossReading] = {}
        self._delay: dict[tuple[str, str], DelayEstimate] = {}

    def record_loss(self, reading: LossReading) -> bool:
        """Store a loss reading; returns whether it replaced the stored one."""
        key = (reading.kind, reading.subject)
        current = self._loss.get(key)
        if current is not None and current.block_index >= reading.block_index:
            return False
        self._loss[key] = reading
        return True

    def record_block_loss(self, loss: BlockLoss, policy: str | None = None) -> int:
        """Store every valid hop of a block's path loss, and the path's as ``policy``.

        Parameters
        ----------
        loss : BlockLoss
            Per-hop loss of one block (:func:`cpn_net.telemetry.altmark.block_losses`).
        policy : str, optional
            Name to store the end-to-end loss under.

        Returns
        -------
        int
            How many readings were stored.

        Examples
        --------
        >>> from cpn_net.telemetry.altmark import block_at, BlockCount, block_losses
        >>> b = block_at(2)
        >>> counts = [BlockCount("r1-eth2:out", b, 10, 0), BlockCount("r4-eth2:in", b, 9, 0)]
        >>> store = TelemetryStore()
        >>> store.record_block_loss(block_losses(["r1-eth2:out", "r4-eth2:in"], counts)[0], policy="p1")
        2
        >>> store.view(4.0).policies["p1"].lost_packets
        1
        """
        stored = 0
        for hop in loss.hops:
            reading = LossReading.from_hop(hop, loss.block)
            if reading is not None:
                stored += self.record_loss(reading)
        e2e = loss.end_to_end
        if policy is not None and e2e.lost_packets is not None and e2e.upstream_packets is not None:
            stored += self.record_loss(
                LossReading(policy, "policy", loss.block.index, loss.block.end_s,
                            e2e.lost_packets, e2e.upstream_packets, e2e.loss_pct)
            )
        return stored

    def record_delay(self, kind: str, estimate: DelayEstimate) -> bool:
        """Store a delay estimate for a ``link`` or ``policy``; returns whether it replaced one.

        Raises
        ------
        TelemetryValueError
            If ``kind`` is not one of ``KINDS``.
        """
        _check_kind(kind)
        key = (kind, estimate.subject)
        current = self._delay.get(key)
        if current is not None and current.last_sample_s > estimate.last_sample_s:
            return False
        self._delay[key] = estimate
        return True

    def view(self, now_s: float) -> NetworkView:
        """The network view at ``now_s``, ages measured from it.

        Parameters
        ----------
        now_s : float
            Current time, same clock as the block times and IOAM timestamps.

        Returns
        -------
        NetworkView
            Elements sorted by kind then subject.
        """
        elements = []
        for kind, subject in sorted(set(self._loss) | set(self._delay)):
            values: dict[str, Any] = {}
            delay = self._delay.get((kind, subject))
            if delay is not None:
                values.update(
                    delay_ms=delay.delay_ms,
                    jitter_ms=delay.jitter_ms,
                    delay_samples=delay.samples,
                    delay_age_s=round(now_s - delay.last_sample_s, 6),
                )
            loss = self._loss.get((kind, subject))
            if loss is not None:
                values.update(
                    lost_packets=loss.lost_packets,
                    sent_packets=loss.sent_packets,
                    loss_pct=loss.loss_pct,
                    loss_block=loss.block_index,
                    loss_age_s=round(now_s - loss.block_end_s, 6),
                )
            elements.append(ElementView(subject, kind, **values))
        return NetworkView(now_s, tuple(elements))


def json_lines(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """One compact, key-sorted JSON document per record (JSON Lines), no newline.

    Parameters
    ----------
    records : iterable of mapping
        JSON-ready records (e.g. :meth:`NetworkView.to_dict`).

    Returns
    -------
    list of str

    Raises
    ------
    TelemetryValueError
        If a record holds NaN or infinity (use None for a missing value)
        or something JSON cannot encode.

    Examples
    --------
    >>> json_lines([{"b": 1, "a": None}, {"x": [1.5]}])
    ['{"a":null,"b":1}', '{"x":[1.5]}']
    """
    lines = []
    for number, record in enumerate(records):
        try:
            lines.append(json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False))
        except (TypeError, ValueError) as err:
            raise TelemetryValueError(
                f"record {number}: {err}; use None for missing values and plain JSON types"
            ) from err
    return lines


def write_json_lines(path: str | Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Append records to a JSON Lines file; returns how many were written.

    All records are encoded before the file is opened, so a bad record
    leaves the file untouched.
    """
    lines = json_lines(records)
    with open(path, "a", encoding="utf-8") as stream:
        stream.writelines(line + "\n" for line in lines)
    return len(lines)

