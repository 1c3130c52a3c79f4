"""Safe YAML loading that remembers where every value came from.

Admins fix what they can find: every mapping and sequence produced here knows
its file, line and column, and so does each of its keys and items, so a schema
error deep in a blueprint can still be reported as ``site.yaml:42:7``.

Only ``yaml.SafeLoader`` constructs are allowed. Duplicate keys are an error
(PyYAML silently keeps the last one, which hides typos). Alias expansion and
document size are bounded so that a "billion laughs" file fails fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: Larger site files are certainly a mistake (or an attack).
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
#: Total number of nodes an alias may make the loader visit.
MAX_ALIAS_NODES = 10_000


@dataclass(frozen=True, slots=True)
class Mark:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class YamlError(Exception):
    """Bad YAML: carries the position so the CLI can print ``file:line:col: message``."""

    def __init__(self, message: str, mark: Mark | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}" if self.mark else self.message


class NodeDict(dict[Any, Any]):
    """A mapping that knows where it and each of its keys were written."""

    __slots__ = ("key_marks", "mark")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mark: Mark | None = None
        self.key_marks: dict[Any, Mark] = {}


class NodeList(list[Any]):
    __slots__ = ("item_marks", "mark")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.mark: Mark | None = None
        self.item_marks: list[Mark] = []


class NodeStr(str):
    """A string scalar with its position (ints and bools keep their plain types)."""

    __slots__ = ("mark",)
    mark: Mark | None


def _mark(node: yaml.Node, file: str) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader plus positions, duplicate-key errors and alias bounds."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self._alias_budget = MAX_ALIAS_NODES

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            anchor = event.anchor
            if anchor in self.anchors:
                self._alias_budget -= _count_nodes(self.anchors[anchor], self._alias_budget)
                if self._alias_budget < 0:
                    raise YamlError(
                        "too many alias expansions (possible 'billion laughs' document); "
                        f"at most {MAX_ALIAS_NODES} aliased nodes are allowed",
                        Mark(self.file, event.start_mark.line + 1, event.start_mark.column + 1),
                    )
        return super().compose_node(parent, index)  # type: ignore[no-any-return]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> NodeDict:  # type: ignore[override]
        if not isinstance(node, yaml.MappingNode):
            raise YamlError("expected a mapping", _mark(node, self.file))
        self.flatten_mapping(node)
        result = NodeDict()
        result.mark = _mark(node, self.file)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise YamlError(
                    "a mapping key must be a plain value", _mark(key_node, self.file)
                ) from None
            if key in result:
                first = result.key_marks[key]
                raise YamlError(
                    f"duplicate key {key!r} (first defined at line {first.line})",
                    _mark(key_node, self.file),
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_marks[key] = _mark(key_node, self.file)
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> NodeList:  # type: ignore[override]
        result = NodeList(self.construct_object(child, deep=True) for child in node.value)
        result.mark = _mark(node, self.file)
        result.item_marks = [_mark(child, self.file) for child in node.value]
        return result

    def construct_yaml_str(self, node: yaml.ScalarNode) -> NodeStr:  # type: ignore[override]
        value = NodeStr(super().construct_yaml_str(node))
        value.mark = _mark(node, self.file)
        return value


def _count_nodes(node: yaml.Node, limit: int) -> int:
    """Count nodes under ``node``, stopping early past ``limit``."""
    count = 0
    stack = [node]
    while stack and count <= limit:
        current = stack.pop()
        count += 1
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.append(key)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return count


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_yaml_str)


def loads(text: str, file: str = "<string>") -> Any:
    """Parse one YAML document with positions. Raises ``YamlError``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise YamlError(f"document larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    loader = _Loader(text, file)
    try:
        return loader.get_single_data()
    except YamlError:
        raise
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        position = Mark(file, mark.line + 1, mark.column + 1) if mark else None
        problem = err.problem or err.context or "invalid YAML"
        if err.context and err.problem:
            problem = f"{err.context}, {err.problem}"
        raise YamlError(problem, position) from None
    except yaml.YAMLError as err:
        raise YamlError(f"invalid YAML: {err}") from None
    finally:
        loader.dispose()


def load_file(path: Path) -> Any:
    """Read and parse ``path``. Unreadable files raise ``OSError`` (exit code 2 in the CLI)."""
    with path.open("rb") as handle:
        raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise YamlError(f"not UTF-8 text (byte {err.start})", Mark(str(path), 1, 1)) from None
    return loads(text, str(path))


def position_of(data: Any, path: list[Any], *, key: bool = False) -> Mark | None:
    """The best known position for a key path inside loaded data.

    With ``key=True`` the position of the last key itself (for "unknown key"),
    otherwise that of its value when the value is a string.
    """
    best: Mark | None = getattr(data, "mark", None)
    node = data
    for index, part in enumerate(path):
        if isinstance(node, NodeDict) and part in node:
            best = node.key_marks.get(part, best)
            if key and index == len(path) - 1:
                return best
            node = node[part]
        elif isinstance(node, NodeList) and isinstance(part, int) and 0 <= part < len(node):
            best = node.item_marks[part] if part < len(node.item_marks) else best
            node = node[part]
        else:
            break
        if isinstance(node, NodeStr) and node.mark is not None:
            best = node.mark
    return best
