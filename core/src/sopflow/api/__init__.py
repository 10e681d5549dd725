"""The HTTP API (Litestar): one controller per resource."""
