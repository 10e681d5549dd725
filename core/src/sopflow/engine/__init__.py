"""The engine: plain synchronous functions over a SQLAlchemy session, shared by
the API, the workers and the CLI."""
