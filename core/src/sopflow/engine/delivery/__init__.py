"""Delivery: claiming due touches with leases and caps, preparing and sending
them through channels, recording outcomes and polling staff confirmations.
Builds on ``sops`` and ``journeys``; the runtime (``sopflow.worker``) drives it."""
