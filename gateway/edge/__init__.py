"""The HTTP edge: the Starlette app, the GraphQL view, the middleware around it, refusals and
errors in their one documented shape, and serving with uvicorn."""
