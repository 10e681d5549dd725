"""The ``forms`` plugin: provider form webhooks (filled in below)."""
