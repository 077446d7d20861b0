"""In-band telemetry, pure core: no sockets, no subprocesses, no clock reads.

* :mod:`~cpn_net.telemetry.altmark` — RFC 9341 alternate marking: periods,
  blocks, per-block counts from cumulative counters, per-hop loss and where
  it happened.
* :mod:`~cpn_net.telemetry.ioam` — RFC 9197 pre-allocated trace in an
  RFC 9486 hop-by-hop option: encoder, decoder, drop counting.
* :mod:`~cpn_net.telemetry.delay` — per-link and per-path one-way delay and
  jitter from IOAM timestamps; RFC 9341 §3.2 alternate-marking delay.
* :mod:`~cpn_net.telemetry.store` — the network view: latest delay, jitter
  and loss per link, node and policy, with provenance and age.
* :mod:`~cpn_net.telemetry.points` — naming of measurement points and links.
* :mod:`~cpn_net.telemetry.errors` — the package's exceptions.

Collectors that read OVS flow statistics, nftables counters or capture
probes live outside this package and call it.
"""
