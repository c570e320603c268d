"""Safe YAML that remembers where each value was written.

``parse(text, file)`` returns plain data built from :class:`LDict` and :class:`LList`,
a ``dict`` and a ``list`` that also carry, per key or item, the file and line it came
from. Only JSON-like values are built (mappings with string keys, sequences, strings,
integers, finite floats, booleans, null), with ``yaml.safe_load``'s reading of scalars;
anything else (Python tags, dates, binary, sets) is an error that names the file and
line. Alias bombs are stopped by counting every value built, aliases included, and by
a limit on nesting depth.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

from .errors import PolicyError

#: Policies larger than this are refused before parsing.
MAX_BYTES = 2 * 1024 * 1024
#: Values built from one document, each alias expansion counted again.
MAX_NODES = 100_000
#: Deepest nesting of mappings and sequences.
MAX_DEPTH = 64

#: libyaml's parser when PyYAML was built with it (ten times faster), else the pure one;
#: both with the safe constructor, which is only used for plain scalars.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
_SCALARS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_HINTS = {
    _TAG + "timestamp": "a date or time is not allowed here; quote it to make it text",
    _TAG + "binary": "binary data is not allowed in a policy",
}


class LDict(dict):
    """A mapping that knows the (file, line) of each key, and of itself (``where``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lines: dict[Any, tuple[str, int] | None] = {}
        self.where: tuple[str, int] | None = None


class LList(list):
    """A sequence that knows the (file, line) of each item, and of itself (``where``)."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.lines: list[tuple[str, int] | None] = [None] * len(self)
        self.where: tuple[str, int] | None = None


def field_name(path: tuple) -> str:
    """``("categories", 3, "thresholds", "text")`` -> ``categories[3].thresholds.text``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).isprintable():  # a newline or control character would break the one-line error
            out += "[" + json.dumps(str(part)) + "]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse(text: str, file: str) -> Any:
    """Parse one YAML document into LDict/LList/scalars, located in ``file``."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise PolicyError(file, None, "", f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, from Python text only
        line = text[: exc.start].count("\n") + 1
        raise PolicyError(file, line, "", "not valid Unicode text (a lone surrogate)") from None
    loader = None
    try:
        loader = _Loader(text)  # the reader already rejects control characters here
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise PolicyError(file, line, "", f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise PolicyError(file, line, "", f"invalid YAML: {exc.reason} ({char})") from None
    except yaml.YAMLError as exc:
        raise PolicyError(file, None, "", f"invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise PolicyError(file, None, "", "invalid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        return None
    return _Builder(file, loader).build(node, (), 0)


class _Builder:
    def __init__(self, file: str, loader: Any):
        self.file, self.loader, self.budget = file, loader, MAX_NODES

    def error(self, node: yaml.Node, path: tuple, message: str) -> PolicyError:
        return PolicyError(self.file, node.start_mark.line + 1, field_name(path), message)

    def build(self, node: yaml.Node, path: tuple, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.error(node, path, f"the document expands to more than {MAX_NODES} values (an alias bomb?)")
        if depth > MAX_DEPTH:
            raise self.error(node, path, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _TAG + "seq":
                raise self.error(node, path, f"the YAML tag {node.tag} is not allowed in a policy")
            out = LList([self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)])
            out.lines = [(self.file, item.start_mark.line + 1) for item in node.value]
            out.where = (self.file, node.start_mark.line + 1)
            return out
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: tuple) -> Any:
        if node.tag not in _SCALARS:
            raise self.error(node, path, _HINTS.get(node.tag, f"the YAML tag {node.tag} is not allowed in a policy"))
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            raise self.error(node, path, f"bad value: {' '.join(str(exc).split())}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(node, path, "a number must be finite (not .inf or .nan)")
        return value

    def key(self, node: yaml.Node, path: tuple) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, path, "a mapping key must be a plain word, not a mapping or a list")
        key = self.scalar(node, path)
        if not isinstance(key, str):
            raise self.error(node, path, f"the key {node.value!r} reads as {type(key).__name__}; quote it to make it text")
        return key

    def mapping(self, node: yaml.MappingNode, path: tuple, depth: int) -> LDict:
        if node.tag != _TAG + "map":
            raise self.error(node, path, f"the YAML tag {node.tag} is not allowed in a policy")
        out = LDict()
        out.where = (self.file, node.start_mark.line + 1)
        merged: dict[str, tuple[Any, tuple[str, int] | None]] = {}
        own: list[tuple[str, yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                # YAML merge keys (<<: *base): own keys win; among merged maps the first wins.
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self.error(source, path, "a merge key (<<) takes a mapping or a list of mappings")
                    built = self.mapping(source, path, depth + 1)
                    for k, v in built.items():
                        merged.setdefault(k, (v, built.lines.get(k)))
                continue
            own.append((self.key(key_node, path), key_node, value_node))
        seen: set[str] = set()
        for key, key_node, _ in own:
            if key in seen:
                raise self.error(key_node, path + (key,), "duplicate key")
            seen.add(key)
        for k, (v, where) in merged.items():
            if k not in seen:
                out[k] = v
                out.lines[k] = where
        for key, key_node, value_node in own:
            out[key] = self.build(value_node, path + (key,), depth + 1)
            out.lines[key] = (self.file, key_node.start_mark.line + 1)
        return out
