"""The controller's northbound: a REST API over HTTP with an OpenAPI 3.1 document.

============================  ==================================================
module                        concern
============================  ==================================================
:mod:`.rest`                  the HTTP server, its routes, the api Protocol
:mod:`.openapi`               the OpenAPI document, built from sections
:mod:`.schema_check`          request bodies checked against that document
:mod:`.errors`                the exception hierarchy (``ApiError``, ...)
============================  ==================================================

The client the ``cpn`` CLI uses is :mod:`cpn_net.northbound_client`.
"""

from controllers.northbound.errors import ApiError, ListenError, NorthboundServerError, SchemaError
from controllers.northbound.openapi import SECTIONS, Section, openapi_document
from controllers.northbound.rest import ROUTES, NorthboundApi, NorthboundServer, Route, start_rest_server

__all__ = [
    "ApiError", "ListenError", "NorthboundApi", "NorthboundServer", "NorthboundServerError", "ROUTES", "Route",
    "SECTIONS", "SchemaError", "Section", "openapi_document", "start_rest_server",
]
