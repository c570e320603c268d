"""Hook implementations of elens-text. Models are imported inside the factories."""

from __future__ import annotations

from elens import hookimpl


@hookimpl
def register_text_checks(register):
    from .checks import NsfwPromptCheck, ProfanityCheck, SemanticCheck

    register("semantic", SemanticCheck)
    register("nsfw-prompt", NsfwPromptCheck)
    register("profanity", ProfanityCheck)


@hookimpl
def register_commands(cli):
    from .commands import train

    cli.add_command(train)
