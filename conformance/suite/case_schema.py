"""The JSON Schema of a test-case file, generated from the registry: every step kind with its
typed options, every check with its arguments (schemas/testcase.schema.json). The loader
(`model.load_case_file`) enforces the same registry, with line numbers."""

from __future__ import annotations

import typing
from typing import Any

from conformance.suite.registry import (COMMON, Address4, Address6, Hex, Prefix, CHECKS,
                                        STEPS)

VARIABLE = {"type": "string", "pattern": r"^\$", "description": "a $variable, resolved when "
                                                                 "the case runs"}


def _of(hint) -> dict:
    """The JSON Schema of one typed option or argument (a $variable always fits)."""
    if hint is Any:
        return {}
    origin = typing.get_origin(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return {"anyOf": [_of(a) for a in args] + [{"type": "null"}]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin in (list, tuple) or hint is list:
        item = (typing.get_args(hint) or (Any,))[0]
        return {"anyOf": [{"type": "array", "items": _of(item)}, VARIABLE]}
    if origin is dict or hint is dict:
        return {"anyOf": [{"type": "object"}, VARIABLE]}
    simple = {bool: "boolean", int: "integer", float: "number"}
    if hint in simple:
        return {"anyOf": [{"type": simple[hint]}, VARIABLE]}
    text = {Prefix: "an IPv6 prefix, address/length", Address4: "an IPv4 address",
            Address6: "an IPv6 address", Hex: "bytes in hexadecimal"}
    if hint in text:
        return {"type": "string", "description": text[hint]}
    return {"type": ["string", "integer", "number"]}


def _check_schema() -> dict:
    branches = []
    for name, kind in sorted(CHECKS.items()):
        props = {"check": {"const": name}, "requirements": {"type": "array",
                                                            "items": {"type": "string"}},
                 "pics": {"type": "array", "items": {"type": "string"}}}
        props.update({p.name: _of(p.hint) for p in kind.params.values()})
        branches.append({"if": {"properties": {"check": {"const": name}}},
                         "then": {"properties": props, "additionalProperties": False,
                                  "required": ["check"] + [p.name for p in
                                                           kind.params.values() if p.required]}})
    return {"type": "object", "required": ["check"],
            "properties": {"check": {"enum": sorted(CHECKS)}}, "allOf": branches}


def _step_schema() -> dict:
    branches = []
    common = {k: _of(v) for k, v in COMMON.items()}
    for name, kind in sorted(STEPS.items()):
        options = {k: _of(v) for k, v in kind.options.items()}
        if "checks" in kind.options:
            options["checks"] = {"type": "array", "items": {"$ref": "#/$defs/check"}}
        options["accept"] = {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"nothing": {"type": "boolean"},
                           "checks": {"type": "array", "items": {"$ref": "#/$defs/check"}}}}}
        body = {"type": ["object", "null"], "properties": {**options, **common},
                "additionalProperties": False, "required": sorted(kind.required)}
        branches.append({"type": "object", "required": [name],
                         "properties": {name: body, **common},
                         "additionalProperties": False})
    return {"oneOf": branches}


def case_file_schema() -> dict:
    import conformance.suite.checks  # noqa: F401 (registers every check)
    import conformance.suite.steps  # noqa: F401 (registers every step kind)
    from conformance.lab.profile import PICS
    from conformance.suite.model import TOPOLOGIES

    pics = {"type": "string", "enum": sorted(PICS) + [f"!{p}" for p in sorted(PICS)]}
    case = {"type": "object", "additionalProperties": False,
            "required": ["id", "title", "requirements", "purpose", "steps"],
            "properties": {
                "id": {"type": "string"}, "title": {"type": "string"},
                "requirements": {"type": "array", "minItems": 1,
                                 "items": {"type": "string"}},
                "purpose": {"type": "string", "pattern": "^Ensure that"},
                "pics": {"type": "array", "items": pics},
                "topology": {"enum": list(TOPOLOGIES)},
                "parameters": {"type": "object"}, "role": {"enum": ["mn", "fa", "ha"]},
                "seed": {"type": "integer"}, "section": {"type": ["string", "number"]},
                "rows": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "minProperties": 1,
                    "properties": {"pics": {"type": "array", "items": pics}}}},
                "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}}}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "dsmip4-conformance test-case file",
            "description": "testcases/*.yaml: cases of one role, each a list of steps with "
                           "their checks; generated from the step and check registry",
            "type": "object", "required": ["role", "cases"], "additionalProperties": False,
            "properties": {"role": {"enum": ["mn", "fa", "ha"]},
                           "section": {"type": ["string", "number"]},
                           "cases": {"type": "array", "items": {"$ref": "#/$defs/case"}}},
            "$defs": {"case": case, "step": _step_schema(), "check": _check_schema()}}
