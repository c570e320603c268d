"""Every hook elens calls. Each docstring is that hook's documentation.

Registration hooks hand the host named component factories; the policy picks
components by id. ``register(id, factory)`` takes a unique id (a duplicate id, from
any plugin, is an error) and a callable ``factory(options, policy)`` that builds the
component. The component interfaces are in :mod:`elens.components`.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("elens")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def register_text_checks(register: Register) -> None:
    """Register text checks (:class:`elens.components.TextCheck`).

    Called once when a plugin manager is built. A check scores prompts for policy
    categories; the host compares scores with the policy's text thresholds. An
    exception raised by the factory or by ``check`` follows the ``text`` stage's
    failure mode and is recorded in the audit log.
    """


@hookspec
def register_prompt_revisers(register: Register) -> None:
    """Register prompt revisers (:class:`elens.components.PromptReviser`).

    A reviser gets the prompt and the triggered text findings and returns a
    :class:`elens.types.Revision`; the host checks the result again, up to
    ``limits.max_revisions`` rounds, and refuses at once a prompt the reviser
    returns unchanged. Errors follow the ``revise`` failure mode.
    """


@hookspec
def register_prompt_planners(register: Register) -> None:
    """Register prompt planners (:class:`elens.components.PromptPlanner`).

    A planner turns the accepted prompt into one prompt per image, with the bias
    attribute values each image was assigned. Errors follow the ``plan`` failure
    mode; with ``allow`` every image uses the accepted prompt.
    """


@hookspec
def register_backends(register: Register) -> None:
    """Register generation backends (:class:`elens.components.Backend`).

    A backend turns prompts and per-image seeds into RGB images. Errors follow the
    ``generate`` failure mode (there is nothing to allow: the request fails).
    """


@hookspec
def register_image_checks(register: Register) -> None:
    """Register image checks (:class:`elens.components.ImageCheck`).

    A check returns per image :class:`elens.types.Signal` (scored against the
    policy's image thresholds) and :class:`elens.types.Measurement` (perceived
    attributes, compared with the values the image was assigned). Errors follow
    the ``image`` failure mode.
    """


@hookspec
def register_image_editors(register: Register) -> None:
    """Register image editors (:class:`elens.components.ImageEditor`).

    The host calls the policy's editor for every triggered image finding whose
    action is ``blur``; the image hash before and after is recorded. Errors follow
    the ``edit`` failure mode (``block`` withholds the image).
    """


@hookspec
def register_audit_sinks(register: Register) -> None:
    """Register audit sinks (:class:`elens.components.AuditSink`).

    Sinks named in ``audit.sinks`` receive each record after the host has written
    and fsynced it to the audit log. A sink error is logged, never fatal: the log
    file stays the record of truth.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``elens`` command line.

    ``cli`` is the top-level :class:`click.Group`; call ``cli.command()`` or
    ``cli.add_command()`` on it. Called once when the CLI starts.
    """
