"""REST front-end (Starlette) with OpenAPI."""
