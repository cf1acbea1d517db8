"""Typed models for the files a user writes, enforced on load: a model's violation becomes one
YamlError naming the file, line and column of the offending key or value, what was expected,
and (for a misspelt key or name) the closest known spelling. The JSON Schemas under `schemas/`
are generated from the same models (`tools/write_schemas.py`), so editors and the loader agree.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from conformance.yamlfile import YamlError, position


class Strict(BaseModel):
    """A mapping with a closed set of keys: an unknown key is an error, never ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def regex(value: str | None) -> str | None:
    """A field validator's body: the value when it is a regular expression."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return value


def closest(word: str, known) -> str | None:
    match = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return match[0] if match else None


def _unwrap(annotation):
    """The model or container type inside Optional[...] / Annotated[...]."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


def _walk(model, loc: tuple):
    """(annotation, FieldInfo or None) of the value at `loc`, following the model's
    annotations; (None, None) where the model says nothing about it."""
    node, field = model, None
    for part in loc:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = next((f for n, f in node.model_fields.items()
                          if part in (n, f.alias)), None)
            if field is None:
                return None, None
            node = field.annotation
        elif typing.get_origin(node) in (dict, list):
            node, field = typing.get_args(node)[-1], None
        else:
            return None, None
    return node, field


def _field_at(model, loc: tuple):
    """The pydantic FieldInfo of the key at `loc`, or None."""
    return _walk(model, loc)[1]


def _keys_at(model, loc: tuple) -> list[str]:
    """The keys a mapping at `loc` may have, following the model's annotations."""
    node, _ = _walk(model, loc)
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or n for n, f in node.model_fields.items()]
    if typing.get_origin(node) is dict:
        key_type = _unwrap(typing.get_args(node)[0])
        if typing.get_origin(key_type) is typing.Literal:
            return [str(a) for a in typing.get_args(key_type)]
    return []


def dotted(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


def describe(model: type[BaseModel], data, error: dict) -> tuple[tuple, str, str | None, bool]:
    """(path in the document, message, fix hint, whether the key itself is at fault) for one
    pydantic error."""
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and (
        p.startswith("function-") or p in ("str", "int", "bool", "float"))))
    kind = error["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        known = _keys_at(model, loc[:-1])
        guess = closest(key, known)
        hint = f"did you mean '{guess}'?" if guess else \
            (f"expected one of {sorted(known)}" if known else None)
        return loc, f"unknown key '{key}'", hint, True
    if "[key]" in loc:
        at = loc.index("[key]")
        key = loc[at - 1]
        known = _keys_at(model, loc[:at - 1])
        guess = closest(key, known)
        hint = f"did you mean '{guess}'?" if guess else f"expected one of {sorted(known)}"
        return loc[:at], f"unknown name '{key}'", hint, True
    if kind == "missing":
        field = _field_at(model, loc)
        why = f": {field.description}" if field is not None and field.description else ""
        return loc, f"missing{why}", f"add the key '{loc[-1]}'", True
    message = error["msg"]
    message = message[0].lower() + message[1:]
    value = error.get("input")
    shown = "" if isinstance(value, (dict, list)) else f"{value!r}: "
    hint = None
    if kind == "literal_error":
        allowed = error.get("ctx", {}).get("expected", "")
        guess = closest(value, [a.strip(" '") for a in allowed.replace(" or ", ",").split(",")])
        hint = f"did you mean '{guess}'?" if guess else f"one of {allowed}"
    if hint is None:
        field = _field_at(model, loc)
        hint = field.description if field is not None and field.description else \
            f"see the schema of this file under schemas/ for what '{dotted(loc)}' takes"
    return loc, shown + message.removeprefix("value error, "), hint, False


def validate(model: type[BaseModel], data, path: str | Path,
             error: type[YamlError] = YamlError, prefix: tuple = ()):
    """`data` (from load_yaml, positions kept) as a `model` instance; the first violation as
    `error` with file, line and column. `prefix` is where `data` sits in its document."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        found = []
        for problem in exc.errors():
            loc, message, hint, key_itself = describe(model, data, problem)
            line, column = position(data, loc, key_itself)
            found.append(((line or 0, column or 0), error(path, dotted(prefix + loc), message,
                                                         line, column, hint)))
        found.sort(key=lambda item: item[0])
        first = found[0][1]
        first.others = [str(e) for _, e in found[1:]]
        raise first from None


def json_schema(model: type[BaseModel], title: str, description: str) -> dict:
    schema = model.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
            "description": description, **{k: v for k, v in schema.items() if k != "title"}}
