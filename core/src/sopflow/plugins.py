"""Build the plugin manager and the registry of what plugins registered.

Order: built-in defaults (``sopflow.defaults``), then installed plugins from the
``sopflow`` entry-point group, filtered by ``SOPFLOW_PLUGINS`` (enable list) and
``SOPFLOW_DISABLED_PLUGINS``.  Plugins in the ``sopflow.opt_in`` group (examples,
debugging aids) are installed but load only when ``SOPFLOW_PLUGINS`` names them.
Built once per app, never at import time.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy
from sopflow_sdk import (
    ActionSpec,
    ChannelSpec,
    ConsolePage,
    FieldSpec,
    JobSpec,
    MigrationsSpec,
    PipelineSpec,
    PluginError,
    RouteSpec,
    TemplateFunctionSpec,
    TriggerSpec,
    WorkerServiceSpec,
)

from sopflow import hookspecs
from sopflow.logging import get_logger

log = get_logger("sopflow.plugins")

DEFAULT_PLUGINS = (
    "sopflow.defaults.fields",
    "sopflow.defaults.triggers",
    "sopflow.defaults.channels",
    "sopflow.defaults.actions",
)

#: Hooks whose built-in items a plugin may replace by registering the same name:
#: behaviour (how to send, what a step does).  A built-in field or event type is
#: vocabulary core itself maintains, so registering it again is a duplicate.
REPLACEABLE_HOOKS = frozenset({"register_channels", "register_actions"})

#: hook name → (record type, attribute that names the record; "" = one per plugin)
REGISTRATION_HOOKS: dict[str, tuple[type, str]] = {
    "register_fields": (FieldSpec, "key"),
    "register_pipelines": (PipelineSpec, "key"),
    "register_triggers": (TriggerSpec, "event_type"),
    "register_actions": (ActionSpec, "name"),
    "register_channels": (ChannelSpec, "name"),
    "register_routes": (RouteSpec, "path"),
    "register_jobs": (JobSpec, "name"),
    "register_worker_services": (WorkerServiceSpec, "name"),
    "register_migrations": (MigrationsSpec, ""),
    "register_template_functions": (TemplateFunctionSpec, "name"),
    "register_console_pages": (ConsolePage, "path"),
}


#: Entry-point group of plugins that load once installed (unless ``SOPFLOW_PLUGINS`` is set).
GROUP = "sopflow"
#: Entry-point group of installed plugins that load only when ``SOPFLOW_PLUGINS`` names them.
OPT_IN_GROUP = "sopflow.opt_in"


def entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    """The installed plugins (a seam tests replace)."""
    return importlib.metadata.entry_points(group=GROUP)


def opt_in_entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    """The installed opt-in plugins (a seam tests replace)."""
    return importlib.metadata.entry_points(group=OPT_IN_GROUP)


@attrs.frozen
class Registered:
    plugin: str
    spec: Any


@attrs.define
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    default: bool


@attrs.frozen
class Replacement:
    """A plugin's item that took the place of a built-in one of the same name."""

    hook: str
    key: str
    plugin: str
    default: str


class Registry:
    """What every plugin registered, by hook, keyed by the record's name.

    A name registered twice stops start-up, except that a plugin's channel or
    action replaces a built-in (``defaults``) one of the same name."""

    def __init__(self, defaults: frozenset[str] = frozenset()) -> None:
        self.items: dict[str, dict[str, Registered]] = {h: {} for h in REGISTRATION_HOOKS}
        self.defaults = defaults
        self.replaced: list[Replacement] = []

    def add(self, hook: str, plugin: str, spec: Any) -> None:
        expected, attr = REGISTRATION_HOOKS[hook]
        if not isinstance(spec, expected):
            raise PluginError(
                f"plugin '{plugin}' passed {type(spec).__name__} to {hook}; "
                f"register a sopflow_sdk.{expected.__name__}"
            )
        key = getattr(spec, attr) if attr else plugin
        if hook in ("register_routes", "register_console_pages"):
            key = f"{plugin}/{key}"
        existing = self.items[hook].get(key)
        if existing is not None:
            replaced = self._replacement(hook, key, existing.plugin, plugin)
            if replaced is None:
                raise PluginError(
                    f"{expected.__name__} '{key}' is registered twice: by plugin "
                    f"'{existing.plugin}' and by plugin '{plugin}'; disable one of them "
                    "with SOPFLOW_DISABLED_PLUGINS or rename the item"
                )
            self.replaced.append(replaced)
            log.info(
                "plugin_replaces_default",
                hook=hook,
                item=key,
                plugin=replaced.plugin,
                default=replaced.default,
            )
            if replaced.plugin == existing.plugin:
                return  # the built-in came second: the plugin's item stays
        self.items[hook][key] = Registered(plugin, spec)

    def _replacement(self, hook: str, key: str, first: str, second: str) -> Replacement | None:
        if hook not in REPLACEABLE_HOOKS or (first in self.defaults) == (second in self.defaults):
            return None
        plugin, default = (second, first) if first in self.defaults else (first, second)
        return Replacement(hook, key, plugin, default)

    def get(self, hook: str, key: str) -> Registered | None:
        return self.items[hook].get(key)

    def all(self, hook: str) -> list[Registered]:
        return list(self.items[hook].values())


class PluginSystem:
    """The plugin manager plus what its plugins registered."""

    def __init__(self, pm: pluggy.PluginManager, infos: dict[str, PluginInfo], trace: bool = False) -> None:
        self.pm = pm
        self.infos = infos
        self.trace = trace
        self.registry = Registry(frozenset(name for name, info in infos.items() if info.default))
        for hook_name in REGISTRATION_HOOKS:
            caller = getattr(pm.hook, hook_name)
            for impl in reversed(caller.get_hookimpls()):
                self._traced(hook_name, impl.plugin_name)
                self._register_from(hook_name, impl)

    def _register_from(self, hook_name: str, impl: Any) -> None:
        """Call one registration hook; any failure stops start-up naming the plugin,
        the hook and the fix."""
        plugin = impl.plugin_name
        expected = REGISTRATION_HOOKS[hook_name][0].__name__
        where = f"plugin '{plugin}'{_distribution(self.infos.get(plugin))} failed in {hook_name}"
        skip = f"or skip the plugin with SOPFLOW_DISABLED_PLUGINS={plugin}"
        try:
            returned = impl.function(register=_bound(self.registry, hook_name, plugin))
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(
                f"{where}: {type(exc).__name__}: {exc}. Fix the hook (it should only build "
                f"sopflow_sdk.{expected} records and pass each to register(...); no I/O), {skip}"
            ) from exc
        if returned is not None:
            raise PluginError(
                f"{where}: it returned {type(returned).__name__} instead of registering; call "
                f"register({expected}(...)) once per record and return nothing, {skip}"
            )

    def _traced(self, hook_name: str, plugin: str) -> None:
        # Core calls implementations one by one (to isolate failures and stamp the
        # plugin), which bypasses pluggy's own tracing: SOPFLOW_TRACE_PLUGINS logs here.
        if self.trace:
            log.info("plugin_trace", hook=hook_name, plugin=plugin)

    @property
    def names(self) -> list[str]:
        return list(self.infos)

    def observed(self, *hook_names: str) -> bool:
        """Whether any loaded plugin implements one of these notification hooks."""
        return any(getattr(self.pm.hook, name).get_hookimpls() for name in hook_names)

    def notify(
        self,
        hook_name: str,
        enabled: Callable[[str], bool] | None = None,
        host_for: Callable[[str], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Call a notification hook on each plugin, isolating failures. An
        implementation that takes ``host`` gets its own (``host_for(plugin)``)."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            if enabled is not None and not enabled(impl.plugin_name):
                continue
            self._traced(hook_name, impl.plugin_name)
            args = dict(kwargs)
            if "host" in impl.argnames and host_for is not None:
                args["host"] = host_for(impl.plugin_name)
            try:
                impl.function(**{k: args[k] for k in impl.argnames})
            except Exception:
                log.exception("plugin_hook_failed", plugin=impl.plugin_name, hook=hook_name)


def _distribution(info: PluginInfo | None) -> str:
    if info is None or info.distribution is None:
        return ""
    return f" (distribution {info.distribution}{' ' + info.version if info.version else ''})"


def _bound(registry: Registry, hook: str, plugin: str) -> Callable[[Any], None]:
    def register(spec: Any) -> None:
        registry.add(hook, plugin, spec)

    return register


def build_plugin_system(
    enabled: tuple[str, ...] | None = None,
    disabled: tuple[str, ...] = (),
    trace: bool = False,
    extra: Iterable[tuple[str, Any]] = (),
) -> PluginSystem:
    """Build a fresh plugin manager: defaults, installed plugins, then ``extra``
    ``(name, module_or_object)`` pairs (tests register plugins this way)."""
    pm = pluggy.PluginManager("sopflow")
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    disabled_set = set(disabled)

    for modname in DEFAULT_PLUGINS:
        name = modname.rsplit(".", 1)[-1]
        name = f"default_{name}"
        if name in disabled_set:
            continue
        _register(pm, infos, name, importlib.import_module(modname), None, None, True)

    eps = list(entry_points())
    opt_in = list(opt_in_entry_points())
    installed = {ep.name for ep in [*eps, *opt_in]}
    if enabled is not None:
        eps += opt_in  # SOPFLOW_PLUGINS may name an opt-in plugin; unset, only `sopflow` loads
        unknown = [n for n in enabled if n not in installed]
        if unknown:
            raise PluginError(
                f"SOPFLOW_PLUGINS names {', '.join(repr(u) for u in unknown)} but no such "
                f"plugin is installed (installed: {', '.join(sorted(installed)) or 'none'}); "
                "install its distribution or fix the name"
            )
    for ep in sorted(eps, key=lambda ep: ep.name):
        if ep.name in disabled_set or (enabled is not None and ep.name not in enabled):
            continue
        dist = ep.dist.name if ep.dist else None
        version = ep.dist.version if ep.dist else None
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin '{ep.name}' (distribution {dist or 'unknown'}"
                f"{' ' + version if version else ''}) failed to import: "
                f"{type(exc).__name__}: {exc}. Reinstall it (`uv pip install --reinstall "
                f"{dist or ep.name}`) or skip it with SOPFLOW_DISABLED_PLUGINS={ep.name}"
            ) from exc
        _register(pm, infos, ep.name, module, dist, version, False)

    for name, obj in extra:
        if name not in disabled_set:
            _register(pm, infos, name, obj, None, None, False)

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(_unknown_hook_message(str(exc))) from exc
    if trace:
        pm.trace.root.setwriter(lambda msg: log.info("plugin_trace", msg=msg.rstrip()))
        pm.enable_tracing()
    return PluginSystem(pm, infos, trace)


def _register(
    pm: pluggy.PluginManager,
    infos: dict[str, PluginInfo],
    name: str,
    obj: Any,
    dist: str | None,
    version: str | None,
    default: bool,
) -> None:
    if name in infos:
        raise PluginError(
            f"two plugins are named '{name}' ({infos[name].distribution or 'built-in'} and "
            f"{dist or 'built-in'}); uninstall one"
        )
    try:
        pm.register(obj, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin '{name}' ({dist or 'built-in'}) implements an unknown or invalid hook: "
            f"{exc}. Check the hook names against docs/plugin-hooks.md"
        ) from exc
    hooks = sorted(h.name for h in pm.get_hookcallers(obj) or [])
    infos[name] = PluginInfo(name, dist, version, hooks, default)


def _unknown_hook_message(message: str) -> str:
    import difflib
    import re

    match = re.search(r"unknown hook '([^']+)'", message)
    hint = ""
    if match:
        specs = [n for n in dir(hookspecs) if n.startswith(("register_", "on_", "resolve_"))]
        close = difflib.get_close_matches(match.group(1), specs, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
    return (
        f"{message}{hint}: a plugin implements an unknown or invalid hook; "
        "check the hook names against docs/plugin-hooks.md"
    )
