"""The plugin's state keys (``host.state(tenant_id)``), one place for their shapes."""


def mapping_key(account_id: int) -> str:
    """The account's field mapping (``mapping.ObjectMapping.to_json``)."""
    return f"mapping.{account_id}"


def watermark_key(account_id: int) -> str:
    """``{"modstamp": ..., "deleted_until": ..., "last_run": ...}`` of the incremental sync."""
    return f"sync.{account_id}"


def import_key(account_id: int) -> str:
    """The initial import's checkpoint: ``{"job_id", "locator", "done", "records"}``."""
    return f"import.{account_id}"
