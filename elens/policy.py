"""Policies: load, resolve ``extends``, validate, and locate every field in its file.

A policy is YAML validated against ``policy.schema.json`` (JSON Schema 2020-12),
then checked for what a schema cannot say (ids unique, weights over known values,
an action with no threshold...). Every error is one line: ``FILE:LINE: FIELD: MESSAGE``.

``extends`` merge rules (also in docs/policy.md):

- mappings merge key by key, recursively; the extending policy wins;
- ``categories`` and ``bias.attributes`` merge by ``id``: an entry with a known id
  updates that entry's fields, a new id is appended, ``{id: x, remove: true}`` drops one;
- every other list (terms, values, text_checks...) is replaced as a whole;
- a relative ``extends`` resolves against the extending file's folder and may not
  leave it; ``builtin:NAME`` names a policy shipped with elens. Cycles are errors.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema

from ._yaml import LDict, LList, field_name, parse
from .errors import PolicyError

BUILTIN_DIR = Path(__file__).parent / "policies"
BY_ID = {("categories",), ("bias", "attributes")}
STAGES = ("text", "revise", "plan", "generate", "image", "edit")

DEFAULTS: dict[str, Any] = {
    "failure_mode": {stage: "block" for stage in STAGES},
    "limits": {"max_prompt_chars": 2000, "max_images": 16, "max_revisions": 2, "max_regenerations": 1,
               "max_image_pixels": 50_000_000},
    "audit": {"path": "elens-audit.jsonl", "redact_prompt": "none", "image_retention": "hash", "sinks": []},
    "bias": {"on_mismatch": "record", "min_confidence": 0.6, "attributes": [], "exempt": {"public_figures": []}},
    "pipeline": {"text_checks": [], "image_checks": []},
    "categories": [],
}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The policy's JSON Schema (draft 2020-12)."""
    return json.loads((Path(__file__).parent / "policy.schema.json").read_text())


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Policy:
    """A resolved, validated policy. ``data`` is plain JSON-like data with defaults filled."""

    data: Mapping[str, Any]
    source: str
    sha256: str
    _tree: Any = field(default=None, repr=False, compare=False)

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, source: str = "<inline>") -> "Policy":
        tree = _resolve_text(text, source, Path(source).parent if source != "<inline>" else Path.cwd(), ())
        return cls._finish(tree, source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<inline>") -> "Policy":
        tree = _to_tree(copy.deepcopy(dict(data)), source)
        base = Path(source).parent if source != "<inline>" else Path.cwd()
        _validate_file(tree, source)
        if "extends" in tree:
            tree = _apply_extends(tree, source, base, (source,))
        return cls._finish(tree, source)

    @classmethod
    def _finish(cls, tree: Any, source: str) -> "Policy":
        _check_resolved(tree, source)
        _fill_defaults(tree)
        data = _plain(tree)
        data.pop("extends", None)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return cls(data, str(source), hashlib.sha256(canonical.encode()).hexdigest(), tree)

    # -- reading ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.data["metadata"]["name"]

    @property
    def version(self) -> str:
        return str(self.data["metadata"]["version"])

    @property
    def categories(self) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.data.get("categories", [])}

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
        return self.data["failure_mode"].get(stage, "block")

    def locate(self, path: Iterable[Any]) -> tuple[str, int | None]:
        """The file and line where the field at ``path`` was written (or its nearest parent)."""
        return _locate(self._tree, tuple(path), self.source)

    def error(self, path: Iterable[Any], message: str) -> PolicyError:
        path = tuple(path)
        file, line = self.locate(path)
        return PolicyError(file, line, field_name(path), message)


def load_policy(path: str | Path) -> Policy:
    """Load a policy file (or ``builtin:NAME``), resolve ``extends``, validate it."""
    file = _builtin_path(str(path)) if str(path).startswith("builtin:") else Path(path)
    tree = _load_file(file, ())
    return Policy._finish(tree, str(path) if str(path).startswith("builtin:") else str(file))


# -- loading ------------------------------------------------------------------------
def _builtin_path(ref: str) -> Path:
    name = ref.split(":", 1)[1]
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name) or not (BUILTIN_DIR / f"{name}.yaml").is_file():
        known = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")))
        raise PolicyError(ref, None, "extends", f"no built-in policy {name!r} (built-in: {known})")
    return BUILTIN_DIR / f"{name}.yaml"


def _load_file(file: Path, chain: tuple[str, ...]) -> Any:
    display = str(file)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise PolicyError(display, None, "", "no such policy file") from None
    except OSError as exc:
        raise PolicyError(display, None, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyError(display, line, "", "not UTF-8 text") from None
    return _resolve_text(text, display, file.parent, chain + (str(file.resolve()),))


def _resolve_text(text: str, source: str, base: Path, chain: tuple[str, ...]) -> Any:
    tree = parse(text, source)
    if tree is None:
        raise PolicyError(source, None, "", "the policy is empty")
    _validate_file(tree, source)
    if "extends" in tree:
        tree = _apply_extends(tree, source, base, chain)
    return tree


def _apply_extends(tree: LDict, source: str, base: Path, chain: tuple[str, ...]) -> Any:
    ref = tree["extends"]
    file_line = tree.lines.get("extends", (source, None))
    if ref.startswith("builtin:"):
        try:
            parent_file = _builtin_path(ref)
        except PolicyError as exc:
            raise PolicyError(file_line[0], file_line[1], "extends", exc.message) from None
    else:
        parent_file = (base / ref).resolve()
        root = base.resolve()
        if root != parent_file.parent and root not in parent_file.parents:
            raise PolicyError(file_line[0], file_line[1], "extends",
                              f"{ref!r} points outside the policy's folder ({root})")
    key = str(parent_file.resolve())
    if key in chain or (source != "<inline>" and key == str(Path(source).resolve())):
        raise PolicyError(file_line[0], file_line[1], "extends", f"cycle: {ref!r} extends back to itself")
    if not parent_file.is_file():
        raise PolicyError(file_line[0], file_line[1], "extends", f"no such policy file {ref!r}")
    parent = _load_file(parent_file, chain + (key,))
    merged = _merge(parent, tree, ())
    merged.pop("extends", None)
    merged.lines.pop("extends", None)
    return merged


def _merge(parent: Any, child: Any, path: tuple) -> Any:
    if isinstance(parent, dict) and isinstance(child, dict):
        out = LDict(parent)
        out.lines = dict(getattr(parent, "lines", {}))
        out.where = getattr(child, "where", None) or getattr(parent, "where", None)
        for key, value in child.items():
            if key == "extends":
                continue
            out[key] = _merge(parent[key], value, path + (key,)) if key in parent else value
            out.lines[key] = child.lines.get(key) if isinstance(child, LDict) else None
        return out
    if path in BY_ID and isinstance(parent, list) and isinstance(child, list):
        items = list(parent)
        lines = list(getattr(parent, "lines", [None] * len(parent)))
        for i, entry in enumerate(child):
            where = child.lines[i] if isinstance(child, LList) else None
            index = next((k for k, p in enumerate(items) if p.get("id") == entry.get("id")), None)
            if entry.get("remove"):
                if index is None:
                    raise PolicyError(where[0] if where else "<inline>", where[1] if where else None,
                                      field_name(path + (i, "id")), f"cannot remove {entry.get('id')!r}: not inherited")
                del items[index]
                del lines[index]
            elif index is None:
                items.append(entry)
                lines.append(where)
            else:
                items[index] = _merge(items[index], entry, path + (index,))
                lines[index] = where
        out_list = LList(items)
        out_list.lines = lines
        out_list.where = getattr(child, "where", None)
        return out_list
    return child


def _to_tree(value: Any, source: str) -> Any:
    if isinstance(value, dict):
        out = LDict({k: _to_tree(v, source) for k, v in value.items()})
        return out
    if isinstance(value, list):
        return LList([_to_tree(v, source) for v in value])
    return value


# -- locating -----------------------------------------------------------------------
def _locate(tree: Any, path: tuple, default_file: str) -> tuple[str, int | None]:
    best: tuple[str, int | None] = (getattr(tree, "where", None) or (default_file, None))
    node = tree
    for part in path:
        where = None
        if isinstance(node, LDict) and part in node:
            where = node.lines.get(part)
            node = node[part]
        elif isinstance(node, LList) and isinstance(part, int) and 0 <= part < len(node):
            where = node.lines[part] if part < len(node.lines) else None
            node = node[part]
        elif isinstance(node, (dict, list)):
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
        else:
            break
        if where and where[1]:
            best = where
    return best


def _error(tree: Any, source: str, path: tuple, message: str) -> PolicyError:
    file, line = _locate(tree, path, source)
    return PolicyError(file, line, field_name(path), message)


# -- validation ---------------------------------------------------------------------
def _validate_file(tree: Any, source: str) -> None:
    """Schema and per-file checks, so errors point at the file that has them."""
    if not isinstance(tree, dict):
        raise PolicyError(source, 1, "", "a policy must be a mapping at the top level")
    errors = sorted(_validator().iter_errors(_plain(tree)), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        error = _pick(errors)
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            if extra:
                path = path + (extra[0],)
                raise _error(tree, source, path, "unknown key")
        raise _error(tree, source, path, _message(error))
    for list_path in BY_ID:
        items = tree
        for part in list_path:
            items = items.get(part) if isinstance(items, dict) else None
        seen: dict[str, int] = {}
        for i, entry in enumerate(items or []):
            if entry["id"] in seen:
                raise _error(tree, source, list_path + (i, "id"),
                             f"duplicate id {entry['id']!r} (first at {field_name(list_path + (seen[entry['id']],))})")
            seen[entry["id"]] = i


def _pick(errors: list) -> Any:
    # The deepest error names the most precise field; ties go to the first in document order.
    return max(errors, key=lambda e: len(e.absolute_path)) if errors else None


def _message(error: Any) -> str:
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "oneOf" and error.absolute_path and error.absolute_path[-1] == "target":
        return "must be 'uniform' or a mapping of value to a positive weight"
    return error.message


def _check_resolved(tree: Any, source: str) -> None:
    """What the schema cannot say, on the merged policy."""
    meta = tree.get("metadata") or {}
    for key in ("name", "version"):
        if not meta.get(key):
            raise _error(tree, source, ("metadata",) if "metadata" in tree else (),
                         f"metadata.{key} is required (in this policy or one it extends)")
    for i, cat in enumerate(tree.get("categories") or []):
        if cat.get("remove"):
            raise _error(tree, source, ("categories", i, "remove"), "remove only applies to an inherited category")
        thresholds = cat.get("thresholds") or {}
        for stage, action in (cat.get("actions") or {}).items():
            if stage not in thresholds:
                raise _error(tree, source, ("categories", i, "actions", stage),
                             f"an {stage} action needs thresholds.{stage}")
        for stage, value in (cat.get("block_threshold") or {}).items():
            if stage in thresholds and value < thresholds[stage]:
                raise _error(tree, source, ("categories", i, "block_threshold", stage),
                             f"{value} is below thresholds.{stage} ({thresholds[stage]})")
        for j, pattern in enumerate(cat.get("patterns") or []):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _error(tree, source, ("categories", i, "patterns", j), f"not a valid regular expression: {exc}")
        for key in cat.get("replacements") or {}:
            if not str(key).strip():
                raise _error(tree, source, ("categories", i, "replacements"), "a replacement needs a non-empty term")
    for i, attr in enumerate((tree.get("bias") or {}).get("attributes") or []):
        path = ("bias", "attributes", i)
        if attr.get("remove"):
            raise _error(tree, source, path + ("remove",), "remove only applies to an inherited attribute")
        values = attr.get("values")
        if not values:
            raise _error(tree, source, path, f"attribute {attr['id']!r} needs values")
        target = attr.get("target", "uniform")
        if isinstance(target, dict):
            for value in target:
                if value not in values:
                    raise _error(tree, source, path + ("target", value), f"{value!r} is not one of the values")
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
        cat.pop("remove", None)
    for attr in tree["bias"]["attributes"]:
        attr.setdefault("target", "uniform")
        attr.setdefault("constraints", [])
