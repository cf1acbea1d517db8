"""YAML loading that remembers where things are, for error messages naming file and line."""

from __future__ import annotations

from pathlib import Path

import yaml


class YamlError(ValueError):
    """A problem in a YAML file: the file, the YAML path of the bad key, what was expected."""

    def __init__(self, path: str | Path, yaml_path: str, message: str, line: int | None = None):
        self.path = str(path)
        self.yaml_path = yaml_path
        self.message = message
        self.line = line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {yaml_path}: {message}")


class LineDict(dict):
    """A mapping that knows the line it starts on (1-based)."""

    line: int | None = None


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
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


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
