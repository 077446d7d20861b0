"""The controller's map page: ``GET /map`` (a single-page app built from ``web/``), ``GET /events`` (its live feed).

==================  ===========================================================
module              concern
==================  ===========================================================
:mod:`.state`       what the page shows (link states, alarms, sites, paths): pure
:mod:`.feed`        the polling thread, the history, Server-Sent Events
:mod:`.counters`    link throughput from the routers' byte counters
:mod:`.assets`      the built page's files
==================  ===========================================================
"""
