"""Safe YAML loading that remembers where every value came from.

Every mapping, sequence and string produced here is a positioned node
(``csuhub.config.nodes``), so a schema error deep in a blueprint can still be
reported as ``site.yaml:42:7``.

Only ``yaml.SafeLoader`` constructs are allowed, plus four tags:

* ``!secret name``: a value from ``secrets.yaml`` in the file's directory or
  one of its parents up to the configuration root; the value is a ``Secret``
  whose ``repr`` never shows it.
* ``!include file.yaml``: another file, relative to the including one; it
  must stay inside the configuration root, and include loops are refused.
* ``!env_var NAME [default]``: an environment variable.
* ``!input name``: a blueprint input; allowed only in blueprints.

Duplicate keys are an error (PyYAML silently keeps the last one, which hides
typos). With ``LoadContext(recover=True)`` (how a site file is read), an
error confined to one value (a tag that cannot resolve, an impossible date,
an unknown tag, a duplicate key) leaves an ``Unresolved`` in its place and
loading goes on, so ``csuhub check`` reports them all with the schema's
errors; ``validate_site`` turns each into an error, so the hub still refuses
the file. Syntax errors and the bounds below stop loading at once.

Alias expansion, nesting depth (across includes too) and document size are
bounded so that a "billion laughs" file, a 100 MB file or a small
file of ten thousand brackets fails fast with a position, not a
``RecursionError`` from deep inside PyYAML.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from csuhub.config.files import MAX_DOCUMENT_BYTES, not_regular, read_text
from csuhub.config.nodes import (
    InputRef,
    Mark,
    NodeDict,
    NodeList,
    NodeStr,
    Secret,
    TagError,
    Unresolved,
    YamlError,
    make_secret,
    origin_of,
    position_of,
    unresolved,
)

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_INCLUDE_NESTING",
    "InputRef",
    "LoadContext",
    "Mark",
    "NodeDict",
    "NodeList",
    "NodeStr",
    "Secret",
    "TagError",
    "Unresolved",
    "YamlError",
    "load_file",
    "loads",
    "make_secret",
    "not_regular",
    "origin_of",
    "position_of",
    "read_secrets_file",
]

#: Total number of nodes an alias may make the loader visit.
MAX_ALIAS_NODES = 10_000
#: Deepest nesting of mappings and sequences, counted across ``!include``s. A real
#: site file is under 10 deep; PyYAML composes and constructs recursively, so
#: without a bound a few kilobytes of ``[[[[`` exhaust the interpreter's stack.
MAX_DEPTH = 64
#: Files included within files: each level costs stack too, even at depth 0.
MAX_INCLUDE_NESTING = 16


@dataclass
class LoadContext:
    """What tag constructors need: where the configuration lives, what is loading."""

    root: Path | None = None
    allow_input: bool = False
    stack: tuple[Path, ...] = ()
    secrets: dict[Path, dict[str, Any] | None] = field(default_factory=dict)
    #: every file read (site, includes, secrets), for reload change detection
    files: set[Path] = field(default_factory=set)
    #: nesting depth at which this file was included (the bound spans includes)
    depth: int = 0
    #: leave an ``Unresolved`` for a ``TagError`` and go on, rather than stop
    recover: bool = False

    def child(self, path: Path, depth: int = 0) -> LoadContext:
        return LoadContext(
            self.root,
            self.allow_input,
            (*self.stack, path),
            self.secrets,
            self.files,
            depth,
            self.recover,
        )


def _mark(node: yaml.Node, file: str) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


def read_secrets_file(path: Path, context: LoadContext) -> dict[str, Any] | None:
    """A ``secrets.yaml`` as a mapping (None when there is none), read once per load
    and cached in ``context``. A FIFO or device is refused, never waited on."""
    cache = context.secrets
    if path not in cache:
        if path.exists() and not path.is_file():
            kind = not_regular(path.stat().st_mode)
            raise YamlError(f"secrets.yaml is {kind}, not a file", Mark(str(path), 1, 1))
        if not path.is_file():
            cache[path] = None
        else:
            context.files.add(path)
            data = load_file(path)  # plain YAML: no tags needed
            if data is not None and not isinstance(data, dict):
                raise YamlError(
                    "secrets.yaml must be a mapping of names to values", Mark(str(path), 1, 1)
                )
            cache[path] = dict(data or {})
    return cache[path]


class _Loader(yaml.SafeLoader):
    """SafeLoader plus positions, duplicate-key errors and alias bounds."""

    def __init__(self, stream: str, file: str, context: LoadContext | None = None) -> None:
        super().__init__(stream)
        self.file = file
        self.context = context or LoadContext()
        self._alias_budget = MAX_ALIAS_NODES
        self._depth = self.context.depth
        #: the depth of each ``!include``/``!env_var`` node: what they parse continues the count
        self._tag_depth: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.MappingStartEvent, yaml.SequenceStartEvent):
            if self._depth >= MAX_DEPTH:
                event = self.peek_event()
                raise YamlError(
                    f"nested more than {MAX_DEPTH} levels deep; a site file needs far fewer",
                    Mark(self.file, event.start_mark.line + 1, event.start_mark.column + 1),
                )
            self._depth += 1
            try:
                return super().compose_node(parent, index)  # type: ignore[no-any-return]
            finally:
                self._depth -= 1
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
        node = super().compose_node(parent, index)
        if node.tag in ("!include", "!env_var"):
            self._tag_depth[id(node)] = self._depth
        return node  # type: ignore[no-any-return]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML's own constructors raise bare ``ValueError`` for a well-formed
        but impossible scalar (``2022-13-45`` is read as a date): locate it. The
        value is not repeated: it may be a secret."""
        deep_before = self.deep_construct
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as err:
            error = TagError(f"invalid value: {err}", _mark(node, self.file))
        except TagError as err:
            error = err
        if not self.context.recover:
            raise error from None
        # undo what PyYAML's construct_object left half done, then stand in for the value
        self.recursive_objects.pop(node, None)
        self.deep_construct = deep_before
        value = unresolved(error.message, error.mark or _mark(node, self.file))
        self.constructed_objects[node] = value
        return value

    def construct_undefined(self, node: yaml.Node) -> Any:
        raise TagError(
            f"unknown tag {node.tag!r}; allowed: !secret, !include, !env_var, !input",
            _mark(node, self.file),
        )

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
                message = f"duplicate key {key!r} (first defined at line {first.line})"
                if not self.context.recover:
                    raise YamlError(message, _mark(key_node, self.file))
                result[key] = unresolved(message, _mark(key_node, self.file))
                result.key_marks[key] = _mark(key_node, self.file)
                continue
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

    # -- tags -------------------------------------------------------------------

    def _scalar(self, node: yaml.Node, tag: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise TagError(f"{tag} takes a single value", _mark(node, self.file))
        value = str(self.construct_scalar(node)).strip()
        if not value:
            raise TagError(f"{tag} needs a value", _mark(node, self.file))
        return value

    def _here(self) -> Path | None:
        return None if self.file.startswith("<") else Path(self.file).resolve().parent

    def construct_secret(self, node: yaml.Node) -> Secret:
        name = self._scalar(node, "!secret")
        mark = _mark(node, self.file)
        here = self._here()
        if here is None:
            raise TagError("!secret needs a file on disk (secrets.yaml beside it)", mark)
        root = self.context.root or here
        directory = here
        searched = []
        while True:
            secrets = self._secrets_in(directory, mark)
            searched.append(str(directory / "secrets.yaml"))
            if secrets is not None and name in secrets:
                value = secrets[name]
                if not isinstance(value, str | int | float) or isinstance(value, bool):
                    raise TagError(f"secret {name!r} must be a string", mark)
                return make_secret(name, value)
            if (
                directory == root
                or directory.parent == directory
                or not directory.is_relative_to(root)
            ):
                break
            directory = directory.parent
        raise TagError(f"secret {name!r} not found in {', '.join(searched)}", mark)

    def _secrets_in(self, directory: Path, mark: Mark) -> dict[str, Any] | None:
        return read_secrets_file(directory / "secrets.yaml", self.context)

    def construct_include(self, node: yaml.Node) -> Any:
        name = self._scalar(node, "!include")
        mark = _mark(node, self.file)
        here = self._here()
        if here is None:
            raise TagError("!include needs a file on disk", mark)
        target = (here / name).resolve()
        root = (self.context.root or here).resolve()
        if not target.is_relative_to(root):
            raise TagError(
                f"!include {name!r} points outside the configuration directory {root}", mark
            )
        if target in self.context.stack or target == Path(self.file).resolve():
            chain = " -> ".join(p.name for p in (*self.context.stack, target))
            raise TagError(f"include loop: {chain}", mark)
        if not target.is_file():
            kind = not_regular(target.stat().st_mode) if target.exists() else None
            what = f"is {kind}, not a file" if kind else "no such file"
            raise TagError(f"!include {name!r}: {what} ({target})", mark)
        if len(self.context.stack) >= MAX_INCLUDE_NESTING:
            raise TagError(f"includes nested more than {MAX_INCLUDE_NESTING} files deep", mark)
        return load_file(target, self.context.child(target, self._tag_depth.get(id(node), 0)))

    def construct_env_var(self, node: yaml.Node) -> Any:
        value = self._scalar(node, "!env_var")
        name, _, default = value.partition(" ")
        if name in os.environ:
            return os.environ[name]
        if default:
            if not default.strip():
                return default
            depth = LoadContext(depth=self._tag_depth.get(id(node), 0))
            return loads(default.strip(), self.file, depth)
        raise TagError(
            f"environment variable {name} is not set and has no default", _mark(node, self.file)
        )

    def construct_input(self, node: yaml.Node) -> InputRef:
        name = self._scalar(node, "!input")
        mark = _mark(node, self.file)
        if not self.context.allow_input:
            raise TagError("!input is only allowed inside a blueprint", mark)
        return InputRef(name, mark)


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
_Loader.add_constructor("!secret", _Loader.construct_secret)
_Loader.add_constructor("!include", _Loader.construct_include)
_Loader.add_constructor("!env_var", _Loader.construct_env_var)
_Loader.add_constructor("!input", _Loader.construct_input)
_Loader.add_constructor(None, _Loader.construct_undefined)


def loads(text: str, file: str = "<string>", context: LoadContext | None = None) -> Any:
    """Parse one YAML document with positions. Raises ``YamlError``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise YamlError(f"document larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    try:
        loader = _Loader(text, file, context)
    except yaml.reader.ReaderError as err:  # raised while reading the first chunk
        raise YamlError(_reader_message(err), _offset_mark(text, file, err.position)) from None
    try:
        return loader.get_single_data()
    except YamlError:
        raise
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if err.context_mark is not None and "<stream end>" in (err.problem or ""):
            mark = err.context_mark  # an unclosed bracket: point where it opened
        position = Mark(file, mark.line + 1, mark.column + 1) if mark else None
        problem = err.problem or err.context or "invalid YAML"
        if err.context and err.problem:
            problem = f"{err.context}, {err.problem}"
        if "'\\t'" in problem or "\t" in problem:
            problem = "a tab character is not allowed here; YAML indents with spaces"
        elif "could not determine a constructor for the tag" in problem:
            tag = problem.rsplit("tag ", 1)[-1]
            problem = f"unknown tag {tag}; allowed: !secret, !include, !env_var, !input"
        raise YamlError(problem, position) from None
    except yaml.reader.ReaderError as err:
        raise YamlError(_reader_message(err), _offset_mark(text, file, err.position)) from None
    except yaml.YAMLError as err:
        raise YamlError(f"invalid YAML: {err}") from None
    except RecursionError:  # the depth bounds should make this unreachable; fail located
        raise YamlError("nested too deeply", Mark(file, 1, 1)) from None
    finally:
        loader.dispose()


def _reader_message(err: yaml.reader.ReaderError) -> str:
    return (
        f"character U+{err.character:04X} is not allowed in YAML "
        "(control characters must be escaped in double-quoted strings)"
    )


def _offset_mark(text: str, file: str, offset: int) -> Mark:
    before = text[:offset]
    return Mark(file, before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


def load_file(path: Path, context: LoadContext | None = None) -> Any:
    """Read and parse ``path``. Unreadable files raise ``OSError`` (exit code 2 in the CLI).

    With a context, tags resolve relative to ``path``; the context's ``root``
    defaults to the directory of the first file loaded.
    """
    if context is not None:
        resolved = path.resolve()
        if context.root is None:
            context.root = resolved.parent
        if not context.stack:
            context.stack = (resolved,)
        context.files.add(resolved)
    return loads(read_text(path), str(path), context)
