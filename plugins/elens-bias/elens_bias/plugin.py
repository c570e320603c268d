"""Hook implementations of elens-bias."""

from __future__ import annotations

from elens import hookimpl


@hookimpl
def register_prompt_planners(register):
    from .planner import PeoplePlanner

    register("people", PeoplePlanner)


@hookimpl
def register_image_checks(register):
    from .faces import FaceCheck

    register("faces", FaceCheck)
