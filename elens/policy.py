"""Policies: load, resolve ``extends``, validate, and locate every field in its file.

A policy is YAML validated against ``policy.schema.json`` (JSON Schema 2020-12), then
checked for what a schema cannot say (an action with no threshold, weights over
unknown values, a regular expression that does not compile...). Every error is one
line, ``FILE:LINE: FIELD: MESSAGE``, naming the file that holds the defect even when
it sits deep in an ``extends`` chain.

``extends`` merge rules (the reference is docs/policy.md):

- mappings merge key by key, recursively; the extending policy wins;
- ``categories`` and ``bias.attributes`` merge by ``id``: an entry with an inherited
  id updates that entry's fields (recursively), a new id is appended, and
  ``{id: x, remove: true}`` drops the inherited entry;
- every other list (terms, values, text_checks...) is replaced as a whole;
- a component (``{plugin, options}``) that names another plugin replaces the inherited
  one as a whole: the old plugin's options would not fit the new one;
- a relative ``extends`` resolves against the extending file's folder and may not
  leave it; ``builtin:NAME`` names a policy shipped in ``elens/policies/``;
  a cycle (a policy reaching itself again) is an error.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema

from ._yaml import MAX_BYTES, MAX_DEPTH, LDict, LList, field_name, parse
from .errors import PolicyError

__all__ = ["Policy", "load_policy", "schema", "builtin_policies", "BUILTIN_DIR", "DEFAULTS"]

#: Policies shipped with elens, reachable as ``builtin:NAME``.
BUILTIN_DIR = Path(__file__).parent / "policies"
#: Lists that merge by ``id`` under ``extends``; every other list is replaced.
BY_ID = (("categories",), ("bias", "attributes"))
STAGES = ("text", "revise", "plan", "generate", "image", "edit")
#: The longest ``extends`` chain followed.
MAX_CHAIN = 32

#: What a resolved policy holds when neither it nor its parents say otherwise.
DEFAULTS: dict[str, Any] = {
    "categories": [],
    "bias": {"on_mismatch": "record", "min_confidence": 0.6, "attributes": [], "exempt": {"public_figures": []}},
    "pipeline": {"text_checks": [], "image_checks": []},
    "failure_mode": {stage: "block" for stage in STAGES},
    "limits": {"max_prompt_chars": 2000, "max_images": 16, "max_revisions": 2, "max_regenerations": 1,
               "max_image_pixels": 50_000_000},
    "audit": {"path": "elens-audit.jsonl", "redact_prompt": "none", "image_retention": "hash", "sinks": []},
}


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "policy.schema.json").read_text(encoding="utf-8"))


def schema() -> dict[str, Any]:
    """The policy's JSON Schema (draft 2020-12), as a fresh dict."""
    return copy.deepcopy(_schema())


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema())


def builtin_policies() -> list[str]:
    """Names usable as ``builtin:NAME``."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Policy:
    """A resolved, validated policy.

    ``data`` is plain JSON-like data: every ``extends`` merged, defaults filled. Treat
    it as read-only; ``sha256`` is the hash of its canonical JSON and is what the audit
    log records.
    """

    data: Mapping[str, Any]
    source: str
    sha256: str
    _tree: Any = field(default=None, repr=False, compare=False)

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, source: str = "<inline>") -> "Policy":
        """A policy from YAML text; a relative ``extends`` resolves against ``source``'s folder."""
        base = _base_dir(source)
        chain = (str(Path(source).resolve()),) if source != "<inline>" else ()
        return cls._finish(_resolve(parse(text, source), source, base, chain), source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<inline>") -> "Policy":
        """A policy from already-parsed data (errors name ``source`` but no line)."""
        if not isinstance(data, Mapping):
            raise PolicyError(source, None, "", "a policy must be a mapping at the top level")
        tree = _to_tree(dict(data), str(source))
        chain = (str(Path(source).resolve()),) if source != "<inline>" else ()
        return cls._finish(_resolve(tree, source, _base_dir(source), chain), source)

    @classmethod
    def _finish(cls, tree: Any, source: str) -> "Policy":
        _check_resolved(tree, source)
        _fill_defaults(tree)
        data = _plain(tree)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return cls(data, str(source), hashlib.sha256(canonical.encode("utf-8")).hexdigest(), tree)

    # -- reading ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.data["metadata"]["name"]

    @property
    def version(self) -> str:
        return str(self.data["metadata"]["version"])

    @property
    def categories(self) -> dict[str, dict[str, Any]]:
        """Category id -> category, in policy order."""
        return {c["id"]: c for c in self.data["categories"]}

    @property
    def bias(self) -> dict[str, Any]:
        return self.data["bias"]

    @property
    def pipeline(self) -> dict[str, Any]:
        return self.data["pipeline"]

    @property
    def limits(self) -> dict[str, Any]:
        return self.data["limits"]

    @property
    def audit(self) -> dict[str, Any]:
        return self.data["audit"]

    def failure_mode(self, stage: str) -> str:
        """``block`` (fail closed) or ``allow`` (fail open) for a failing plugin at ``stage``."""
        return self.data["failure_mode"].get(stage, "block")

    def locate(self, path: Iterable[Any]) -> tuple[str, int | None]:
        """The file and line where the field at ``path`` was written (or its nearest parent)."""
        return _locate(self._tree, tuple(path), self.source)

    def error(self, path: Iterable[Any], message: str) -> PolicyError:
        """A :class:`PolicyError` located at the field ``path`` (e.g. ``("pipeline", "backend")``)."""
        path = tuple(path)
        file, line = self.locate(path)
        return PolicyError(file, line, field_name(path), message)


def load_policy(path: str | os.PathLike) -> Policy:
    """Load a policy file (or ``builtin:NAME``), resolve ``extends``, validate it."""
    ref = os.fspath(path)
    if ref.startswith("builtin:"):
        file = _builtin_path(ref, ref, None)
    else:
        file = Path(ref)
    return Policy._finish(_load_file(file, ()), ref)


# -- loading ------------------------------------------------------------------------
def _base_dir(source: str) -> Path:
    return Path(source).parent if source != "<inline>" else Path.cwd()


def _builtin_path(ref: str, file: str, line: int | None) -> Path:
    name = ref.split(":", 1)[1]
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name) or not (BUILTIN_DIR / f"{name}.yaml").is_file():
        known = ", ".join(f"builtin:{n}" for n in builtin_policies())
        raise PolicyError(file, line, "extends", f"no built-in policy {ref!r} (there are: {known})")
    return BUILTIN_DIR / f"{name}.yaml"


def _load_file(file: Path, chain: tuple[str, ...]) -> Any:
    display = str(file)
    try:
        # Read at most one byte past the limit: /dev/zero or an endless pipe is refused, not swallowed.
        with open(file, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise PolicyError(display, None, "", f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    except FileNotFoundError:
        raise PolicyError(display, None, "", "no such policy file") from None
    except OSError as exc:
        raise PolicyError(display, None, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyError(display, line, "", "not UTF-8 text") from None
    return _resolve(parse(text, display), display, file.parent, chain + (str(file.resolve()),))


def _resolve(tree: Any, source: str, base: Path, chain: tuple[str, ...]) -> Any:
    if tree is None:
        raise PolicyError(source, None, "", "the policy is empty")
    _validate_file(tree, source)
    if "extends" in tree:
        tree = _apply_extends(tree, source, base, chain)
    return tree


def _apply_extends(tree: LDict, source: str, base: Path, chain: tuple[str, ...]) -> Any:
    ref = tree["extends"]
    file, line = tree.lines.get("extends") or (source, None)
    if ref.startswith("builtin:"):
        parent_file = _builtin_path(ref, file, line)
    else:
        # Lexical containment: ``..`` and absolute paths may not leave the folder.
        root = Path(os.path.normpath(base.absolute()))
        parent_file = Path(os.path.normpath(root / ref))
        if root not in parent_file.parents:
            raise PolicyError(file, line, "extends", f"{ref!r} points outside this policy's folder ({root})")
        if not parent_file.is_file():
            raise PolicyError(file, line, "extends", f"no such policy file {ref!r} (looked for {parent_file})")
    key = str(parent_file.resolve())
    if key in chain:
        what = "the policy extends itself" if key == chain[-1] else f"{ref!r} extends back to a policy in the chain"
        raise PolicyError(file, line, "extends", f"cycle: {what}")
    if len(chain) >= MAX_CHAIN:
        raise PolicyError(file, line, "extends", f"the extends chain is longer than {MAX_CHAIN} policies")
    parent = _load_file(parent_file, chain)
    merged = _merge(parent, tree, ())
    merged.pop("extends", None)
    merged.lines.pop("extends", None)
    return merged


def _merge(parent: Any, child: Any, path: tuple) -> Any:
    if isinstance(parent, dict) and isinstance(child, dict) and _other_plugin(parent, child):
        return child  # another plugin: the inherited options were written for the old one
    if isinstance(parent, dict) and isinstance(child, dict):
        out = LDict(parent)
        out.lines = dict(getattr(parent, "lines", {}))
        out.where = getattr(child, "where", None) or getattr(parent, "where", None)
        for key, value in child.items():
            if key == "extends":
                continue
            out[key] = _merge(parent[key], value, path + (key,)) if key in parent else value
            out.lines[key] = getattr(child, "lines", {}).get(key)
        return out
    if path in BY_ID and isinstance(parent, list) and isinstance(child, list):
        items = list(parent)
        lines = list(getattr(parent, "lines", [None] * len(parent)))
        child_lines = getattr(child, "lines", [None] * len(child))
        for i, entry in enumerate(child):
            index = next((k for k, p in enumerate(items) if p.get("id") == entry.get("id")), None)
            if entry.get("remove"):
                if index is None:
                    where = child_lines[i] or (None, None)
                    raise PolicyError(where[0] or "<inline>", where[1], field_name(path + (i, "id")),
                                      f"cannot remove {entry.get('id')!r}: no inherited entry has that id")
                del items[index]
                del lines[index]
            elif index is None:
                items.append(entry)
                lines.append(child_lines[i])
            else:
                items[index] = _merge(items[index], entry, path + (index,))
                lines[index] = child_lines[i]
        out_list = LList(items)
        out_list.lines = lines
        out_list.where = getattr(child, "where", None)
        return out_list
    return child


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _other_plugin(parent: Mapping[str, Any], child: Mapping[str, Any]) -> bool:
    return "plugin" in child and "plugin" in parent and child["plugin"] != parent["plugin"]


def _to_tree(value: Any, source: str, path: tuple = ()) -> Any:
    """Copy JSON-like data into LDict/LList, refusing what a YAML policy could not hold."""
    # Data from Python has no lines, but it has a source: a field set here is located
    # as (source, None), never at the line of an inherited field it overrides.
    here = (source, None)
    if len(path) > MAX_DEPTH:
        raise PolicyError(source, None, field_name(path), f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Mapping):
        out = LDict()
        for k, v in value.items():
            if not isinstance(k, str) or not _is_unicode(k):
                what = type(k).__name__ if not isinstance(k, str) else "not valid Unicode text"
                raise PolicyError(source, None, field_name(path), f"the key {k!r} is {what}; a policy's keys are text")
            out[k] = _to_tree(v, source, path + (k,))
        out.lines = {k: here for k in out}
    elif isinstance(value, (list, tuple)):
        out = LList([_to_tree(v, source, path + (i,)) for i, v in enumerate(value)])
        out.lines = [here] * len(out)
    elif isinstance(value, float) and not math.isfinite(value):
        raise PolicyError(source, None, field_name(path), "a number must be finite (not inf or nan)")
    elif isinstance(value, str) and not _is_unicode(value):
        raise PolicyError(source, None, field_name(path), "not valid Unicode text (a lone surrogate)")
    elif value is None or isinstance(value, (str, int, float, bool)):
        return value
    else:
        raise PolicyError(source, None, field_name(path),
                          f"a {type(value).__name__} is not a policy value (text, numbers, true/false, null, "
                          f"lists and mappings only)")
    out.where = here
    return out


# -- locating -----------------------------------------------------------------------
def _locate(tree: Any, path: tuple, default_file: str) -> tuple[str, int | None]:
    best: tuple[str, int | None] = getattr(tree, "where", None) or (default_file, None)
    node = tree
    for part in path:
        where = None
        if isinstance(node, dict) and part in node:
            where = getattr(node, "lines", {}).get(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            lines = getattr(node, "lines", [])
            where = lines[part] if part < len(lines) else None
            node = node[part]
        else:
            break
        if where and where[1]:
            best = where
        elif where and where[0]:
            best = (where[0], None)
    return best


def _error(tree: Any, source: str, path: tuple, message: str) -> PolicyError:
    file, line = _locate(tree, path, source)
    return PolicyError(file, line, field_name(path), message)


# -- validation ---------------------------------------------------------------------
def _validate_file(tree: Any, source: str) -> None:
    """Schema and per-file checks, so that errors point at the file that has them."""
    if not isinstance(tree, dict):
        raise PolicyError(source, getattr(tree, "where", (None, 1))[1] or 1, "",
                          "a policy must be a mapping at the top level")
    errors = list(_validator().iter_errors(_plain(tree)))
    if errors:
        # The first defect in the file, and at one place the most precise one.
        def order(e: Any) -> tuple:
            line = _locate(tree, tuple(e.absolute_path), source)[1] or 0
            return (line, -len(e.absolute_path))

        error = min(errors, key=order)
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            extra = [k for k in error.instance if k not in allowed]
            if extra:
                raise _error(tree, source, path + (extra[0],), _unknown_key(extra[0], allowed))
        raise _error(tree, source, path, _message(error))
    for list_path in BY_ID:
        items: Any = tree
        for part in list_path:
            items = items.get(part) if isinstance(items, dict) else None
        seen: dict[str, int] = {}
        for i, entry in enumerate(items or []):
            if entry["id"] in seen:
                raise _error(tree, source, list_path + (i, "id"),
                             f"duplicate id {entry['id']!r} (first at {field_name(list_path + (seen[entry['id']],))})")
            seen[entry["id"]] = i
            if "remove" in entry:
                if "extends" not in tree:
                    raise _error(tree, source, list_path + (i, "remove"),
                                 "remove only applies in a policy that extends another")
                others = [k for k in entry if k not in ("id", "remove")]
                if others:
                    raise _error(tree, source, list_path + (i, others[0]),
                                 "an entry with remove: true may only have an id")


def _unknown_key(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    return f"unknown key {key!r} (known: {', '.join(allowed)})"


def _message(error: Any) -> str:
    path = tuple(error.absolute_path)
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "const" and path == ("elens",):
        return f"the policy format version must be 1, not {error.instance!r}"
    if error.validator == "const" and path and path[-1] == "remove":
        return "write remove: true, or leave it out"
    if error.validator == "required" and path == ():
        return "'elens: 1' (the policy format version) is required at the top"
    if error.validator == "oneOf" and path and path[-1] == "target":
        return "must be 'uniform' or a mapping of value to a positive weight"
    if error.validator == "type" and error.validator_value == "string" and isinstance(error.instance, (int, float, bool)):
        return f"must be text, not {type(error.instance).__name__} {error.instance!r}; quote it"
    if error.validator == "pattern" and path and path[-1] == "id":
        return f"{error.instance!r} is not a valid id (lowercase letters, digits and _, starting with a letter)"
    if error.validator == "pattern":
        return f"{error.instance!r} must not be blank" if not str(error.instance).strip() else error.message
    if error.validator in ("minimum", "maximum", "exclusiveMinimum") and isinstance(error.instance, (int, float)):
        if any(p in ("thresholds", "block_threshold", "min_confidence") for p in path):
            return f"{error.instance!r} is not a score between 0 and 1"
    return " ".join(error.message.split())


def _check_resolved(tree: Any, source: str) -> None:
    """What the schema cannot say, on the merged policy; each error located."""
    meta = tree.get("metadata") or {}
    for key in ("name", "version"):
        if not meta.get(key):
            raise _error(tree, source, ("metadata",) if "metadata" in tree else (),
                         f"metadata.{key} is required (in this policy or one it extends)")
    seen: set[str] = set()
    for i, cat in enumerate(tree.get("categories") or []):
        path = ("categories", i)
        if cat["id"] in seen:
            raise _error(tree, source, path + ("id",), f"duplicate id {cat['id']!r}")
        seen.add(cat["id"])
        thresholds = cat.get("thresholds") or {}
        for stage in cat.get("actions") or {}:
            if stage not in thresholds:
                raise _error(tree, source, path + ("actions", stage),
                             f"an {stage} action needs thresholds.{stage} (a stage without a threshold is not judged)")
        for stage, value in (cat.get("block_threshold") or {}).items():
            if stage not in thresholds:
                raise _error(tree, source, path + ("block_threshold", stage), f"needs thresholds.{stage} as well")
            if value < thresholds[stage]:
                raise _error(tree, source, path + ("block_threshold", stage),
                             f"{value} is below thresholds.{stage} ({thresholds[stage]})")
        for j, pattern in enumerate(cat.get("patterns") or []):
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except (re.error, RecursionError, OverflowError) as exc:
                raise _error(tree, source, path + ("patterns", j),
                             f"not a valid regular expression: {exc}") from None
            if compiled.search(""):
                raise _error(tree, source, path + ("patterns", j), "the pattern matches empty text (it would match every prompt)")
        for key in cat.get("replacements") or {}:
            if not key.strip():
                raise _error(tree, source, path + ("replacements", key), "a replacement needs a non-blank term")
    attr_seen: set[str] = set()
    for i, attr in enumerate((tree.get("bias") or {}).get("attributes") or []):
        path = ("bias", "attributes", i)
        if attr["id"] in attr_seen:
            raise _error(tree, source, path + ("id",), f"duplicate id {attr['id']!r}")
        attr_seen.add(attr["id"])
        values = attr.get("values")
        if not values:
            raise _error(tree, source, path, f"attribute {attr['id']!r} needs values")
        target = attr.get("target", "uniform")
        if isinstance(target, dict):
            for value in target:
                if value not in values:
                    raise _error(tree, source, path + ("target", value),
                                 f"{value!r} is not one of the values of {attr['id']!r}")
        for j, constraint in enumerate(attr.get("constraints") or []):
            for k, value in enumerate(constraint["values"]):
                if value not in values:
                    raise _error(tree, source, path + ("constraints", j, "values", k),
                                 f"{value!r} is not one of the values of {attr['id']!r}")


def _fill_defaults(tree: Any) -> None:
    for key, default in DEFAULTS.items():
        if key not in tree:
            tree[key] = copy.deepcopy(default)
        elif isinstance(default, dict):
            for sub, value in default.items():
                tree[key].setdefault(sub, copy.deepcopy(value))
    for cat in tree["categories"]:
        # A stage with a threshold and no action warns (the judge's default, made visible).
        thresholds = cat.get("thresholds") or {}
        if thresholds:
            actions = cat.setdefault("actions", LDict())
            for stage in thresholds:
                actions.setdefault(stage, "warn")
    for attr in tree["bias"]["attributes"]:
        attr.setdefault("target", "uniform")
        attr.setdefault("constraints", [])
