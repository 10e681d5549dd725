"""Every hook a sopflow plugin can implement, grouped by family.

Registration hooks (``register_*``) are called once per app at startup with a
``register`` callable; each call registers one frozen record from
``sopflow_sdk``.  Core stamps the record with the plugin's name and fails fast on
duplicates (a plugin's channel or action replaces a built-in one of the same
name); a hook that raises stops start-up naming the plugin, the hook and the
fix.  Notification hooks (``on_*``) are isolated: one plugin's failure is
logged with its name and the others still run.  Hooks are cheap and synchronous;
the objects they register do the I/O.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("sopflow")

# -- customer fields ---------------------------------------------------------


@hookspec
def register_fields(register: Any) -> None:
    """Register customer fields this plugin contributes.

    Called once per app at startup.  Each field is read-only for API users and
    listed with ``"plugin": <name>`` in ``GET /api/v1/fields``.

    :param register: call ``register(FieldSpec(...))`` once per field.
    :returns: nothing.

    Example::

        @hookimpl
        def register_fields(register):
            register(FieldSpec(key="orders.total_spend", type="number", label="Total spend"))
    """


# -- stages -------------------------------------------------------------------


@hookspec
def register_pipelines(register: Any) -> None:
    """Register pipeline templates (ordered stages) this plugin brings.

    Called once per app at startup.  Templates can be instantiated for a tenant
    with ``POST /api/v1/pipelines {"template": "<key>"}``.

    :param register: call ``register(PipelineSpec(key=..., stages=(StageSpec(...), ...)))``.
    :returns: nothing.

    Example::

        @hookimpl
        def register_pipelines(register):
            register(PipelineSpec(key="education", name="Education",
                                  stages=(StageSpec("interest"), StageSpec("trial"))))
    """


@hookspec
def on_stage_changed(
    tenant_id: int, customer_id: int, pipeline_id: int, from_stage: str | None, to_stage: str, cause: str
) -> None:
    """Called after a customer moved to another stage (a CRM writes it back).

    Called once per move, after the move is committed, for every enabled plugin.
    A failure is logged with the plugin's name and does not stop other plugins.

    :param tenant_id: the tenant.
    :param customer_id: the customer that moved.
    :param pipeline_id: the pipeline of the stage.
    :param from_stage: the previous stage name, or ``None``.
    :param to_stage: the new stage name.
    :param cause: ``rule``, ``manual``, ``sync`` or ``api``.
    :returns: nothing.

    Example::

        @hookimpl
        def on_stage_changed(tenant_id, customer_id, pipeline_id, from_stage, to_stage, cause):
            crm.update_stage(customer_id, to_stage)
    """


# -- triggers -------------------------------------------------------------------


@hookspec
def register_triggers(register: Any) -> None:
    """Register the event types this plugin emits, with their payload schema.

    Called once per app at startup.  SOPs and journeys can then trigger on them.

    :param register: call ``register(TriggerSpec(event_type=..., payload_schema={...}))``.
    :returns: nothing.

    Example::

        @hookimpl
        def register_triggers(register):
            register(TriggerSpec("order.paid", payload_schema={"type": "object"}))
    """


@hookspec
def register_routes(register: Any) -> None:
    """Register inbound HTTP routes (webhooks) this plugin serves.

    Called once per app at startup.  Each route is mounted at
    ``/plugins/<plugin>/<path>``; its handler gets an ``InboundRequest`` and the
    ``Host`` and returns an ``InboundResponse``.  Handlers verify signatures and
    hand normalized events to ``host.ingest``; heavy work goes to jobs.

    :param register: call ``register(RouteSpec(path=..., handler=..., methods=(...)))``.
    :returns: nothing.

    Example::

        @hookimpl
        def register_routes(register):
            register(RouteSpec("callback/{account_id:int}", handle_callback, ("GET", "POST")))
    """


# -- actions --------------------------------------------------------------------


@hookspec
def register_actions(register: Any) -> None:
    """Register what an SOP step can do: each name is a step type.

    Called once per app at startup.  A step uses the action as
    ``{"type": <name>, ...params}`` (the older ``{"type": "plugin", "action":
    <name>, "params": {...}}`` still works); ``ActionSpec.run(context, params)``
    runs in a worker when the step is due.  The built-in actions (``send``,
    ``add_tag``, ``webhook``, ...) are registered the same way by
    ``default_actions``; registering one of their names replaces the built-in.

    :param register: call ``register(ActionSpec(name=..., run=...))``.
    :returns: nothing.

    Example::

        @hookimpl
        def register_actions(register):
            register(ActionSpec("crm.write_back", run=write_back))
    """


# -- channels -------------------------------------------------------------------


@hookspec
def register_channels(register: Any) -> None:
    """Register touchpoints with their declared capabilities.

    Called once per app at startup.  ``ChannelSpec.factory(config, secrets)``
    builds a ``Channel`` for one channel account; ``secrets`` holds ``Secret``
    values decrypted from the account's encrypted credentials.
    ``ChannelSpec.capabilities`` (by default the factory's
    ``Channel.capabilities``) is what the engine plans with, and what an SOP's
    send steps are checked against when it is saved.  ``ChannelSpec.settings``
    (a ``SettingsSchema``) declares an account's settings and secrets, checked
    when an account is connected; ``ChannelSpec.step_params`` the extra keys a
    send step may carry, checked when an SOP is saved.  Registering the name of
    the built-in ``log`` channel replaces it.

    :param register: call ``register(ChannelSpec(name=..., factory=...))``.
    :returns: nothing.

    Example::

        @hookimpl
        def register_channels(register):
            register(ChannelSpec("sms", factory=SmsChannel))
    """


# -- message templates -----------------------------------------------------------


@hookspec
def register_template_functions(register: Any) -> None:
    """Register functions SOP message templates may call (``{{ track("https://...") }}``).

    Called once per app at startup.  When a send step's text is rendered for a
    customer, each function of a plugin enabled for the tenant is callable by its
    name; core calls ``fn(TemplateCall(tenant_id, customer_id, now, accounts, touch_id),
    *args)`` and puts what it returns (a string) into the message (``accounts``:
    the tenant's accounts of the plugin's channels, so the function needs no I/O).  A call is
    bounded: one that raises, or takes longer than its ``timeout_seconds``, skips
    the touch with a reason naming the function; a render makes at most
    ``MAX_TEMPLATE_CALLS`` calls.

    :param register: call ``register(TemplateFunctionSpec(name=..., fn=...))`` once per function.
    :returns: nothing.

    Example::

        @hookimpl
        def register_template_functions(register):
            register(TemplateFunctionSpec("track", fn=tracked_link))
    """


# -- storage ---------------------------------------------------------------------


@hookspec
def register_migrations(register: Any) -> None:
    """Register the Alembic revisions of this plugin's own tables.

    Called once per app at startup.  ``sopflow migrate`` (and an embedded start,
    and the test kit's template database) upgrades core, then every loaded
    plugin's branch to its head, each recorded in its own version table
    ``alembic_version_<plugin>``.  Reach the tables at run time through
    ``host.transaction(tenant_id).connection``; keep small per-tenant values
    (cursors, watermarks) in ``host.state(tenant_id)`` instead.

    :param register: call ``register(MigrationsSpec(directory=..., metadata=...))`` once.
    :returns: nothing.

    Example::

        @hookimpl
        def register_migrations(register):
            register(MigrationsSpec(Path(__file__).parent / "migrations", metadata=tables.metadata))
    """


# -- lifecycle --------------------------------------------------------------------


@hookspec
def register_jobs(register: Any) -> None:
    """Register background jobs: periodic (``every_seconds``) or on demand.

    Called once per app at startup.  Periodic jobs are run by the scheduler;
    on-demand jobs run in a worker when a plugin calls ``host.enqueue(name, ...)``.

    :param register: call ``register(JobSpec(name=..., fn=..., every_seconds=...))``.
    :returns: nothing.

    Example::

        @hookimpl
        def register_jobs(register):
            register(JobSpec("salesforce.poll", fn=poll_changes, every_seconds=60))
    """


@hookspec
def register_worker_services(register: Any) -> None:
    """Register long-lived tasks every worker process runs while it is up.

    Called once per app at startup.  ``sopflow worker`` and ``sopflow up`` start
    each service's ``run(host, stop)`` in its own thread and set ``stop`` (a
    ``threading.Event``) at shutdown; a service that raises is logged and run
    again after ``restart_seconds``.

    :param register: call ``register(WorkerServiceSpec(name=..., run=...))``.
    :returns: nothing.

    Example::

        @hookimpl
        def register_worker_services(register):
            register(WorkerServiceSpec("personal_wechat.listeners", run=run_listeners))
    """


@hookspec
def register_console_pages(register: Any) -> None:
    """Add pages (or panels on a core page) to the operator console, like Datasette's plugin pages.

    Called once per app at startup.  Each page is served at
    ``/console/plugins/<plugin>/<path>`` behind the console's sign-in, listed in
    its menu, and with ``panel_on="channels"`` also shown on the channels page;
    only for tenants the plugin is enabled for.  ``render(ConsoleRequest, Host)``
    returns an escaped HTML fragment.

    :param register: call ``register(ConsolePage(path=..., title=..., render=...))``.
    :returns: nothing.

    Example::

        @hookimpl
        def register_console_pages(register):
            register(ConsolePage("live-codes", "Live codes 渠道活码", render_live_codes, panel_on="channels"))
    """


@hookspec
def register_commands(cli: Any, open_host: Any) -> None:
    """Add subcommands to the ``sopflow`` command line (like llm's ``register_commands``).

    Called once when the ``sopflow`` command starts, before arguments are parsed,
    for every installed plugin (``SOPFLOW_PLUGINS`` applies). A plugin that fails
    here is skipped with a warning; the core commands always work.

    :param cli: the ``sopflow`` ``click.Group``; add a group named after the plugin.
    :param open_host: ``open_host(embedded=False)`` is a context manager giving a
        ``Host`` for this plugin on a migrated database (``SOPFLOW_DATABASE_URL``,
        or with ``embedded=True`` the embedded SQLite file when none is set).
    :returns: nothing.

    Example::

        @hookimpl
        def register_commands(cli, open_host):
            @cli.group()
            def crm():
                "CRM tools."

            @crm.command()
            @click.argument("account_id", type=int)
            def resync(account_id):
                with open_host() as host:
                    run_resync(host, account_id)
    """


@hookspec
def on_event(tenant_id: int, event: dict[str, Any], host: Any) -> None:
    """Called after an event was appended to the event log.

    Called once per new event (never for duplicates), after the ingest
    transaction committed.  A failure is logged with the plugin's name and does
    not stop other plugins or the ingest.

    :param tenant_id: the tenant.
    :param event: ``{"id", "type", "customer_id", "idempotency_key", "occurred_at",
        "received_at", "payload", "source", "causation_id", "depth"}`` (times as ISO 8601).
        Tag changes carry ``payload.tags_added`` / ``payload.tags_removed``; an
        ingested event that changed fields names them in ``payload.fields_changed``
        (automated changes carry the new values in ``payload.fields``).
    :param host: this plugin's ``Host`` (optional: declare it to get it), e.g. to
        ``host.enqueue`` the slow part or read ``host.customer(tenant_id, id)``.
    :returns: nothing.

    Example::

        @hookimpl
        def on_event(tenant_id, event):
            if event["type"] == "order.paid":
                metrics.orders.inc()
    """
