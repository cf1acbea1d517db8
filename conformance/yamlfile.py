"""YAML loading that remembers where things are, for error messages naming file and line."""

from __future__ import annotations

from pathlib import Path

import yaml


class YamlError(ValueError):
    """A problem in a YAML file: the file, the YAML path of the bad key, what was expected."""

    def __init__(self, path: str | Path, yaml_path: str, message: str, line: int | None = None,
                 column: int | None = None, hint: str | None = None):
        self.path = str(path)
        self.yaml_path = yaml_path
        self.message = message
        self.line = line
        self.column = column
        self.hint = hint
        where = f"{self.path}:{line}" if line else self.path
        where += f":{column}" if line and column else ""
        message += f" (fix: {hint})" if hint else ""
        self.others: list[str] = []  # further problems in the same file, same form
        super().__init__(f"{where}: {yaml_path}: {message}")

    def __str__(self) -> str:
        return "\n".join([super().__str__(), *self.others])


class LineDict(dict):
    """A mapping that knows the line it starts on (1-based) and where each of its keys and
    values is (line, column), both 1-based."""

    line: int | None = None
    keys_at: dict | None = None
    values_at: dict | None = None


class LineList(list):
    """A sequence that knows where it and each of its items are (line, column), 1-based."""

    line: int | None = None
    items_at: list | None = None


def _at(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    mapping = LineDict(loader.construct_pairs(node, deep=True))
    keys = [loader.construct_object(k, deep=True) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate key(s) {sorted(map(str, duplicates))}", node.start_mark)
    mapping.line = node.start_mark.line + 1
    mapping.keys_at = {k: _at(kn) for k, (kn, _) in zip(keys, node.value)}
    mapping.values_at = {k: _at(vn) for k, (_, vn) in zip(keys, node.value)}
    return mapping


def _construct_sequence(loader, node):
    items = LineList(loader.construct_object(child, deep=True) for child in node.value)
    items.line = node.start_mark.line + 1
    items.items_at = [_at(child) for child in node.value]
    return items


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: str | Path, error: type[YamlError] = YamlError):
    """Parse a YAML file; an unreadable file or a syntax error raises `error` (a YamlError
    subclass of the caller's) with the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(path, "$", f"cannot read file: {exc.strerror}") from exc
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(path, "$", f"YAML syntax: {problem}", line) from exc


def line_of(node) -> int | None:
    return getattr(node, "line", None)


def position(data, path: tuple, key_itself: bool = False) -> tuple[int | None, int | None]:
    """(line, column) of the value at `path` (keys and indexes from the document's root) in
    data read by `load_yaml`; with `key_itself`, of the last key rather than its value. Where
    the path leaves the document, the position of the deepest part that exists."""
    node, best = data, (line_of(data), None)
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, LineDict) and part in node:
            table = node.keys_at if (last and key_itself) else node.values_at
            best = (table or {}).get(part, best)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            best = (node.items_at or [best] * len(node))[part]
            node = node[part]
        else:
            break
    return best
