"""The Ethical-Lens LLM judge (``llm-judge``) and rewriter (``llm-rewriter``).

Both ask a chat model the same question: label the prompt K0 (safe), K1 (implicit
hate, harassment or violence: revise), K2 (explicit self-harm, sexual or shocking
content, mild illegal activity: revise), K3 (highly sensitive: refuse) or A1 (a public
figure: generate, hide the face), name a category P1-P9, explain, and give a revised
prompt, all as one JSON object. The judge turns the label into signals; the rewriter
returns the revised prompt.

Two transports, picked by ``options.transport``:

- ``transformers``: a local causal LM folder (``model_path``, relative to the policy
  file), loaded once per process with ``local_files_only=True``; greedy decoding.
- ``openai``: any OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint,
  with the key read from the environment variable ``api_key_env`` (urllib only).

An answer that is not such a JSON object raises :class:`JudgeAnswerError`; the host
then applies the stage's failure mode.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from elens import OptionsError, Revision, Signal

SYSTEM_PROMPT = """\
You are a content-safety reviewer for a text-to-image service. Read the user's image \
prompt and classify it.

Labels:
- K0: safe. Keep the prompt as it is.
- K1: mentions hate, harassment or violence, but not explicitly. Revise it.
- K2: explicit self-harm, sexual or shocking content, or mild illegal activity. Revise it.
- K3: highly sensitive content of any category (especially cultural, political, racial or \
religious). Refuse it.
- A1: mentions a real political or public figure. The image is made but the face is hidden.

Categories: P1 hate, P2 harassment, P3 violence, P4 self-harm, P5 sexual content, \
P6 shocking content, P7 illegal activity, P8 political content, P9 cultural content.

When you revise, remove or replace the unsafe elements and keep the rest of the meaning; \
prefer changing the style or elements to adding disclaimers.

Answer with one JSON object and nothing else:
{"label": "K0|K1|K2|K3|A1", "category": "P1".."P9" or null, "confidence": 0.0-1.0, \
"explanation": "one sentence", "revised_prompt": "the prompt to use"}"""

LABELS = ("K0", "K1", "K2", "K3", "A1")

#: Ethical-Lens categories -> default-policy category ids.
DEFAULT_CATEGORIES = {
    "P1": "hate",
    "P2": "harassment",
    "P3": "violence",
    "P4": "self_harm",
    "P5": "sexual",
    "P6": "shocking",
    "P7": "illegal",
    "P8": "political",
    "P9": "cultural",
}
DEFAULT_SCORES = {"K1": 0.75, "K2": 0.85, "K3": 1.0, "A1": 1.0}

_TRANSPORT_PROPERTIES = {
    "transport": {"enum": ["transformers", "openai"]},
    "model_path": {"type": "string"},
    "max_new_tokens": {"type": "integer", "minimum": 1},
    "base_url": {"type": "string", "pattern": "^https?://"},
    "model": {"type": "string"},
    "api_key_env": {"type": "string"},
    "timeout_s": {"type": "number", "exclusiveMinimum": 0},
    "system_prompt": {"type": "string"},
}
_OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["transport"],
    "properties": {
        **_TRANSPORT_PROPERTIES,
        "categories": {
            "type": "object",
            "propertyNames": {"pattern": "^P[1-9]$"},
            "additionalProperties": {"type": ["string", "null"]},
        },
        "public_figure": {"type": ["string", "null"]},
        "scores": {
            "type": "object",
            "propertyNames": {"enum": ["K1", "K2", "K3", "A1"]},
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "use_confidence": {"type": "boolean"},
    },
}


class JudgeAnswerError(ValueError):
    """The model's answer is not the JSON object the protocol asks for."""


@dataclass(frozen=True)
class Verdict:
    """One parsed answer."""

    label: str
    category: str | None
    explanation: str
    revised_prompt: str | None
    confidence: float | None


def _first_json_object(text: str) -> dict:
    """The first ``{...}`` in ``text`` that parses, code fences and chatter around it allowed."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    snippet = text.strip().replace("\n", " ")
    snippet = snippet[:80] + ("..." if len(snippet) > 80 else "")
    raise JudgeAnswerError(f"no JSON object in the model's answer: {snippet!r}")


def parse_answer(text: str) -> Verdict:
    """Parse a model answer; raise :class:`JudgeAnswerError` saying what is wrong."""
    obj = _first_json_object(text)
    label = str(obj.get("label", "")).strip().upper()
    if label not in LABELS:
        raise JudgeAnswerError(f"label {obj.get('label')!r} is not one of {', '.join(LABELS)}")
    category = obj.get("category")
    if category is not None:
        category = str(category).strip()
        m = re.fullmatch(r"[Pp]([1-9])\b.*", category)
        category = f"P{m.group(1)}" if m else category.lower().replace("-", "_").replace(" ", "_")
        category = category or None
    if label in ("K1", "K2", "K3") and not category:
        raise JudgeAnswerError(f"label {label} needs a category (P1-P9)")
    confidence = obj.get("confidence")
    if confidence is not None:
        try:
            confidence = float(confidence)
        except (TypeError, ValueError):
            raise JudgeAnswerError(f"confidence {confidence!r} is not a number") from None
        if not 0.0 <= confidence <= 1.0:
            raise JudgeAnswerError(f"confidence {confidence} is not between 0 and 1")
    revised = obj.get("revised_prompt")
    if revised is not None and not isinstance(revised, str):
        raise JudgeAnswerError("revised_prompt is not a string")
    return Verdict(label, category, str(obj.get("explanation") or "").strip(), revised, confidence)


# -- transports ------------------------------------------------------------------------

_models: dict[str, tuple[Any, Any]] = {}
_models_lock = threading.Lock()


class TransformersTransport:
    """A local causal LM; loads once per process per path; greedy decoding."""

    def __init__(self, path: Path, max_new_tokens: int = 256):
        self.path, self.max_new_tokens = str(path), max_new_tokens
        with _models_lock:
            if self.path not in _models:
                from transformers import AutoModelForCausalLM, AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.set_verbosity_error()
                hf_logging.disable_progress_bar()
                tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True).eval()
                _models[self.path] = (tokenizer, model)
        self.tokenizer, self.model = _models[self.path]

    def complete(self, system: str, user: str) -> str:
        import torch

        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{system}\n\nPrompt: {user}\nAnswer: "
        enc = tok(text, return_tensors="pt")
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.inference_mode():
            out = self.model.generate(
                **enc, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad
            )
        return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


class OpenAITransport:
    """``POST {base_url}/chat/completions`` on any OpenAI-compatible server."""

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float = 30.0,
                 max_tokens: int = 256):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout_s, self.max_tokens = model, api_key, timeout_s, max_tokens

    def complete(self, system: str, user: str) -> str:
        # urllib.request pulls in ssl and email (most of a second): only the HTTP path needs it.
        import urllib.error
        import urllib.request

        body = json.dumps({
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(200).decode("utf-8", "replace").strip().replace("\n", " ")
            raise RuntimeError(f"{self.url}: HTTP {exc.code} {exc.reason}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RuntimeError(f"{self.url}: {reason}") from None
        try:
            return json.loads(payload)["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeAnswerError(f"{self.url}: not an OpenAI chat completion response") from None


def _transport(options: dict, policy: Any) -> Any:
    kind = options.get("transport")
    max_new_tokens = int(options.get("max_new_tokens", 256))
    if kind == "transformers":
        if not options.get("model_path"):
            raise OptionsError("model_path", "the transformers transport needs the path of a causal LM folder")
        path = Path(options["model_path"]).expanduser()
        if not path.is_absolute() and getattr(policy, "source", None):
            path = Path(str(policy.source)).parent / path
        if not path.is_dir():
            raise OptionsError("model_path", f"{path}: no such folder")
        return TransformersTransport(path, max_new_tokens)
    if kind == "openai":
        for field in ("base_url", "model"):
            if not options.get(field):
                raise OptionsError(field, "the openai transport needs it")
        if not re.match(r"^https?://", options["base_url"]):
            raise OptionsError("base_url", "must start with http:// or https://")
        api_key = None
        if options.get("api_key_env"):
            api_key = os.environ.get(options["api_key_env"])
            if not api_key:
                raise OptionsError("api_key_env", f"environment variable {options['api_key_env']} is not set")
        return OpenAITransport(options["base_url"], options["model"], api_key,
                               float(options.get("timeout_s", 30.0)), max_new_tokens)
    raise OptionsError("transport", "must be transformers or openai")


class _LLMComponent:
    options_schema = _OPTIONS_SCHEMA

    def __init__(self, options: dict, policy: Any):
        self.transport = _transport(options, policy)
        self.system_prompt = options.get("system_prompt") or SYSTEM_PROMPT
        self.category_map = dict(DEFAULT_CATEGORIES)
        for code, cid in (options.get("categories") or {}).items():
            if cid is not None and cid not in policy.categories:
                raise OptionsError(f"categories.{code}", f"unknown category {cid!r}")
            self.category_map[code] = cid
        self.public_figure = options.get("public_figure", "public_figure")
        if options.get("public_figure") and options["public_figure"] not in policy.categories:
            raise OptionsError("public_figure", f"unknown category {options['public_figure']!r}")
        self.policy_categories = set(policy.categories)

    def ask(self, prompt: str) -> Verdict:
        return parse_answer(self.transport.complete(self.system_prompt, prompt))

    def category_id(self, verdict: Verdict) -> str | None:
        """The policy id of the answer's category, or None when the policy does not judge it."""
        code = verdict.category
        if not code:
            return None
        if code not in self.category_map and code not in self.policy_categories:
            raise JudgeAnswerError(f"category {code!r} is neither P1-P9 nor a category of the policy")
        cid = self.category_map.get(code, code)
        return cid if cid in self.policy_categories else None


class LLMJudge(_LLMComponent):
    """Text check ``llm-judge``: an LLM labels each prompt K0-K3/A1 (Ethical-Lens).

    K0 gives no signal; K1 and K2 a signal for the answer's category, scored 0.75 and
    0.85 (or the answer's ``confidence`` with ``use_confidence: true``); K3 scores 1.0
    so the category's ``block_threshold`` (if any) refuses it; A1 scores 1.0 for
    ``public_figure``. A category the policy does not have gives no signal.
    """

    def __init__(self, options: dict, policy: Any):
        super().__init__(options, policy)
        self.scores = {**DEFAULT_SCORES, **(options.get("scores") or {})}
        self.use_confidence = bool(options.get("use_confidence", False))

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]:
        return [self._signals(self.ask(p)) for p in prompts]

    def _signals(self, v: Verdict) -> list[Signal]:
        if v.label == "K0":
            return []
        reason = v.explanation or f"LLM judge label {v.label}"
        if v.label == "A1":
            cid = self.public_figure if self.public_figure in self.policy_categories else None
            return [Signal(cid, self.scores["A1"], label="A1", reason=reason)] if cid else []
        cid = self.category_id(v)
        if cid is None:
            return []
        score = self.scores[v.label]
        if self.use_confidence and v.confidence is not None and v.label != "K3":
            score = v.confidence
        return [Signal(cid, float(score), label=f"{v.label}/{v.category}", reason=reason)]


class LLMRewriter(_LLMComponent):
    """Prompt reviser ``llm-rewriter``: the LLM's ``revised_prompt`` (Ethical-Lens).

    The user message names the triggered findings so the model knows what to remove.
    ``negative_prompt`` joins the policy categories' ``negative_prompt`` phrases.
    """

    def __init__(self, options: dict, policy: Any):
        super().__init__(options, policy)
        phrases: list[str] = []
        for cat in policy.categories.values():
            for phrase in cat.get("negative_prompt") or []:
                if phrase not in phrases:
                    phrases.append(phrase)
        self._negative = ", ".join(phrases) or None

    def revise(self, prompt: str, findings: Sequence[Any]) -> Revision:
        flagged = sorted({f.category for f in findings if getattr(f, "triggered", True)})
        user = prompt if not flagged else f"{prompt}\n\n(Flagged for: {', '.join(flagged)}.)"
        verdict = self.ask(user)
        revised = (verdict.revised_prompt or "").strip()
        if not revised:
            if verdict.label == "K0":
                revised = prompt
            else:
                raise JudgeAnswerError(f"label {verdict.label} came with no revised_prompt")
        reason = verdict.explanation or f"rewritten by the LLM (label {verdict.label})"
        return Revision(prompt=revised, reason=reason, negative_prompt=self._negative,
                        changes=((prompt, revised),) if revised != prompt else ())

    def negative_prompt(self) -> str | None:
        return self._negative
