"""Customers and what describes them: tenants and API keys, typed fields,
customer records with identities and tags, segments, and the ingest of events.
The bottom of the engine: nothing here imports another engine package."""
