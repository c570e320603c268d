"""The hook implementations: the text check ``lexicon`` and the prompt reviser ``replace``."""

from __future__ import annotations

from elens import hookimpl

from .check import LexiconCheck
from .revise import ReplaceReviser

__all__ = ["LexiconCheck", "ReplaceReviser", "register_text_checks", "register_prompt_revisers"]


@hookimpl
def register_text_checks(register):
    register("lexicon", LexiconCheck)


@hookimpl
def register_prompt_revisers(register):
    register("replace", ReplaceReviser)
