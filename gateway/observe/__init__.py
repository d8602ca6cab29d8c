"""Operations: what an operator sees of a running gateway. Structured log lines (logs.py),
Prometheus metrics (metrics.py), OpenTelemetry traces (tracing.py), and what one HTTP request
leaves for all three (requests.py); the HTTP edge (gateway/edge/observe.py) puts them to use."""
