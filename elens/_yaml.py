"""Safe YAML that remembers where each value was written.

``parse(text, file)`` returns plain data built from :class:`LDict` and :class:`LList`,
which are a ``dict`` and a ``list`` that also carry, per key or item, the file and
line it came from. Only YAML's safe types are built; duplicate keys, Python tags and
alias bombs are errors that name the file and line.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import PolicyError

MAX_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000


class LDict(dict):
    """A mapping that knows the (file, line) of each key."""

    lines: dict[Any, tuple[str, int]]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lines = {}
        self.where: tuple[str, int] | None = None


class LList(list):
    """A sequence that knows the (file, line) of each item."""

    lines: list[tuple[str, int] | None]

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.lines = [None] * len(self)
        self.where: tuple[str, int] | None = None


def _field(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(text: str, file: str) -> Any:
    """Parse one YAML document into LDict/LList/scalars, located in ``file``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise PolicyError(file, None, "", f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise PolicyError(file, line, "", f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(file, None, "", f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if node is None:
        return None
    budget = [MAX_NODES]
    return _build(node, file, (), loader, budget)


def _build(node: yaml.Node, file: str, path: tuple, loader: yaml.SafeLoader, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise PolicyError(file, node.start_mark.line + 1, _field(path),
                          "the document expands to too many values (an alias bomb?)")
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise PolicyError(file, line, _field(path), f"unsupported YAML tag {node.tag}")
        loader.flatten_mapping(node)
        out = LDict()
        out.where = (file, line)
        for key_node, value_node in node.value:
            key = _build(key_node, file, path, loader, budget)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise PolicyError(file, key_node.start_mark.line + 1, _field(path), "a mapping key must be a plain value")
            if key in out:
                raise PolicyError(file, key_node.start_mark.line + 1, _field(path + (key,)), "duplicate key")
            out[key] = _build(value_node, file, path + (key,), loader, budget)
            out.lines[key] = (file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise PolicyError(file, line, _field(path), f"unsupported YAML tag {node.tag}")
        items = [_build(item, file, path + (i,), loader, budget) for i, item in enumerate(node.value)]
        out_list = LList(items)
        out_list.lines = [(file, item.start_mark.line + 1) for item in node.value]
        out_list.where = (file, line)
        return out_list
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise PolicyError(file, line, _field(path), f"not allowed in a policy: {exc.problem}") from None
    except (ValueError, TypeError) as exc:
        raise PolicyError(file, line, _field(path), f"bad value: {exc}") from None


def field_name(path: tuple) -> str:
    return _field(path)
