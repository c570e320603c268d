"""Hook implementations of elens-text. Models are imported inside the factories."""

from __future__ import annotations

from elens import hookimpl


@hookimpl
def register_text_checks(register):
    from .checks import NsfwPromptCheck, ProfanityCheck, SemanticCheck
    from .llm import LLMJudge

    register("semantic", SemanticCheck)
    register("nsfw-prompt", NsfwPromptCheck)
    register("profanity", ProfanityCheck)
    register("llm-judge", LLMJudge)


@hookimpl
def register_prompt_revisers(register):
    from .llm import LLMRewriter

    register("llm-rewriter", LLMRewriter)


@hookimpl
def register_commands(cli):
    from .commands import examples, train

    cli.add_command(train)
    cli.add_command(examples)
