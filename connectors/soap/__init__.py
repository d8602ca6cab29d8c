"""Connectors to the SOAP agencies, over their vendored WSDLs."""
