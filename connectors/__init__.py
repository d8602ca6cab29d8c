"""Connectors to the agencies the gateway depends on, and the resilience they share."""
