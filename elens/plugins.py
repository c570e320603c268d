"""Finding plugins and the components they register.

A plugin is any module registered in the ``elens`` entry-point group (the shipped
plugins in ``plugins/`` too). :func:`make_manager` builds a fresh pluggy manager;
:class:`Registry` collects the named component factories the plugins hand over
and builds the ones a policy picks.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import jsonschema
import pluggy

from . import hookspecs
from .components import KINDS
from .errors import ElensError, OptionsError, PolicyError

ENTRY_POINT_GROUP = "elens"

#: What each pipeline entry in a policy is, as (path in the policy, component kind).
KIND_NAMES = {
    "text_check": "text check",
    "reviser": "prompt reviser",
    "planner": "prompt planner",
    "backend": "backend",
    "image_check": "image check",
    "editor": "image editor",
    "audit_sink": "audit sink",
}


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


def make_manager(extra_plugins: Iterable[Any] = (), *, entry_points: bool = True) -> pluggy.PluginManager:
    """Build a plugin manager with every installed ``elens`` plugin loaded.

    ``ELENS_LOAD_PLUGINS=a,b`` loads only the named entry points (an empty value
    loads none); ``ELENS_BLOCK_PLUGINS=a,b`` skips those. ``extra_plugins`` are
    registered as well (modules or objects with hookimpls), which is how tests
    use a plugin that is not installed.
    """
    pm = pluggy.PluginManager("elens")
    pm.add_hookspecs(hookspecs)
    if entry_points:
        allow = _env_list("ELENS_LOAD_PLUGINS")
        block = _env_list("ELENS_BLOCK_PLUGINS") or set()
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            if (allow is not None and ep.name not in allow) or ep.name in block:
                continue
            if pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must be named, not crash with a traceback
                raise ElensError(f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
            if ep.dist is not None:
                _entry_point_dists.setdefault(ep.module.split(".")[0], ep.dist.name)
            pm.register(plugin, name=ep.name)
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


#: top-level module -> the distribution whose entry point loaded it
_entry_point_dists: dict[str, str] = {}


@functools.lru_cache(maxsize=1)
def _distributions_by_module() -> dict[str, list[str]]:
    # Reads the file list of every installed distribution: a second in an environment
    # with torch. Only for plugins that no entry point loaded (registered in-process).
    return md.packages_distributions()


def _distributions(top: str) -> list[str]:
    if top in _entry_point_dists:
        return [_entry_point_dists[top]]
    return _distributions_by_module().get(top, [])


def plugin_version(plugin: Any) -> str:
    """The version of the distribution a plugin module comes from, else its ``__version__``."""
    module = getattr(plugin, "__name__", type(plugin).__module__)
    top = module.split(".")[0]
    for dist_name in _distributions(top):
        try:
            return md.version(dist_name)
        except md.PackageNotFoundError:
            continue
    return str(getattr(plugin, "__version__", "0"))


def plugin_distribution(plugin: Any) -> str | None:
    module = getattr(plugin, "__name__", type(plugin).__module__)
    dists = _distributions(module.split(".")[0])
    return dists[0] if dists else None


@dataclass(frozen=True)
class ComponentInfo:
    """A registered component: its id, kind, the plugin that registered it, the version."""

    id: str
    kind: str
    plugin: str
    version: str
    factory: Callable[..., Any]


def policy_entries(policy: Any) -> Iterator[tuple[str, tuple, dict]]:
    """Every plugin entry of a policy as (kind, path, entry)."""
    pipeline = policy.pipeline
    for i, entry in enumerate(pipeline.get("text_checks") or []):
        yield "text_check", ("pipeline", "text_checks", i), entry
    for key, kind in (("reviser", "reviser"), ("planner", "planner"), ("backend", "backend"), ("editor", "editor")):
        if pipeline.get(key):
            yield kind, ("pipeline", key), pipeline[key]
    for i, entry in enumerate(pipeline.get("image_checks") or []):
        yield "image_check", ("pipeline", "image_checks", i), entry
    for i, entry in enumerate(policy.audit.get("sinks") or []):
        yield "audit_sink", ("audit", "sinks", i), entry


class Registry:
    """The components the installed plugins registered, by kind and id."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self._components: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in KINDS}
        for kind, (hook_name, _protocol) in KINDS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                version = plugin_version(impl.plugin)
                impl.function(register=self._registrar(kind, impl.plugin_name, version))

    @classmethod
    def from_manager(cls, pm: pluggy.PluginManager | None = None) -> "Registry":
        return cls(pm if pm is not None else make_manager())

    def _registrar(self, kind: str, plugin_name: str, version: str) -> Callable[[str, Callable[..., Any]], None]:
        def register(component_id: str, factory: Callable[..., Any]) -> None:
            if not isinstance(component_id, str) or not component_id:
                raise ElensError(f"plugin {plugin_name!r} registered a {KIND_NAMES[kind]} without an id")
            if not callable(factory):
                raise ElensError(f"plugin {plugin_name!r}: {KIND_NAMES[kind]} {component_id!r} is not callable")
            existing = self._components[kind].get(component_id)
            if existing is not None:
                raise ElensError(
                    f"{KIND_NAMES[kind]} id {component_id!r} is registered twice: "
                    f"by plugin {existing.plugin!r} and by plugin {plugin_name!r}"
                )
            comp_version = str(getattr(factory, "version", None) or version)
            self._components[kind][component_id] = ComponentInfo(
                component_id, kind, plugin_name, comp_version, factory
            )

        return register

    def ids(self, kind: str) -> list[str]:
        return sorted(self._components[kind])

    def get(self, kind: str, component_id: str) -> ComponentInfo:
        return self._components[kind][component_id]

    def all(self) -> list[ComponentInfo]:
        return [info for by_id in self._components.values() for info in by_id.values()]

    def check(self, policy: Any) -> None:
        """Raise :class:`PolicyError` for the first unknown plugin id or invalid options in ``policy``."""
        for kind, path, entry in policy_entries(policy):
            plugin_id = entry.get("plugin")
            if plugin_id not in self._components[kind]:
                known = ", ".join(self.ids(kind)) or "none installed"
                raise policy.error(
                    path + ("plugin",), f"unknown {KIND_NAMES[kind]} {plugin_id!r} (installed: {known})"
                )
            schema = getattr(self._components[kind][plugin_id].factory, "options_schema", None)
            if schema:
                options = entry.get("options") or {}
                error = jsonschema.exceptions.best_match(
                    jsonschema.Draft202012Validator(schema).iter_errors(options)
                )
                if error is not None:
                    raise policy.error(path + ("options", *error.absolute_path), error.message)

    def build(self, kind: str, path: tuple, entry: dict, policy: Any) -> tuple[Any, ComponentInfo]:
        """Build the component a policy entry names; an options defect becomes a located PolicyError."""
        info = self._components[kind].get(entry.get("plugin"))
        if info is None:
            self.check(policy)
            raise policy.error(path + ("plugin",), f"unknown {KIND_NAMES[kind]} {entry.get('plugin')!r}")
        try:
            component = info.factory(dict(entry.get("options") or {}), policy)
        except OptionsError as exc:
            field = tuple(int(part) if part.isdigit() else part for part in exc.field.split(".") if part)
            raise policy.error(path + ("options", *field), exc.message) from exc
        except PolicyError:
            raise
        _protocol = KINDS[kind][1]
        if not isinstance(component, _protocol):
            raise ElensError(
                f"{KIND_NAMES[kind]} {info.id!r} from plugin {info.plugin!r} does not implement "
                f"{_protocol.__name__}"
            )
        return component, info


def default_registry() -> Registry:
    """A registry of every installed plugin (a new manager each call; no global state)."""
    return Registry.from_manager(make_manager())


def describe_plugins(pm: pluggy.PluginManager, registry: Registry) -> list[dict[str, Any]]:
    """Name, version, hooks and components of each loaded plugin, for ``elens plugins``."""
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0] or ""):
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        components = sorted(
            (f"{KIND_NAMES[c.kind]}:{c.id}" for c in registry.all() if c.plugin == name)
        )
        out.append(
            {
                "name": name,
                "distribution": plugin_distribution(plugin),
                "version": plugin_version(plugin),
                "hooks": hooks,
                "components": components,
            }
        )
    return out
