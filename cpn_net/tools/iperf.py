"""Read one ``iperf3 -J`` client run (the benchmarks' TCP figures).

Examples
--------
>>> end = iperf_end('{"end": {"sum_sent": {"bits_per_second": 2e8}, "sum_received": {"bits_per_second": 1.9e8},'
...                 ' "streams": [{"sender": {"mean_rtt": 8100}}]}}')
>>> end["received"]["bits_per_second"], end["sender"]["mean_rtt"]
(190000000.0, 8100)
>>> iperf_end('{"error": "unable to connect"}')
{'error': 'unable to connect'}
>>> iperf_end("iperf3: error - unable to connect")["error"].startswith("not iperf3 JSON")
True
"""

from __future__ import annotations

import json


def iperf_end(text: str) -> dict:
    """``{"sent", "received", "sender"}`` from the report's ``end`` section, or ``{"error": why}``.

    ``text`` may carry noise before the JSON (iperf3 prints a carriage return on some errors);
    ``sender`` is the first stream's sender figures (RTTs in µs), empty when absent.
    """
    try:
        doc = json.loads(text[text.index("{"):]) if "{" in text else json.loads(text)
    except ValueError:
        return {"error": f"not iperf3 JSON: {text.strip()[-300:]!r}"}
    if doc.get("error"):
        return {"error": doc["error"]}
    try:
        sent, received = doc["end"]["sum_sent"], doc["end"]["sum_received"]
    except (KeyError, TypeError):
        return {"error": "iperf3 JSON without end.sum_sent / end.sum_received"}
    return {"sent": sent, "received": received,
            "sender": ((doc["end"].get("streams") or [{}])[0].get("sender") or {})}
