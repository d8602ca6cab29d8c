"""Simulated outside agencies (land registry, civil registry, bank, postal) on loopback.

Real SOAP and REST servers for the demo, tests and benchmarks; the gateway never imports this.
"""
