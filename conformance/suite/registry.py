"""What a test case may say: every step kind and every check, with the arguments each takes and
the subject each judges, declared where it is defined and enforced when a case file loads.

A check is a function `(ctx, subject, **arguments) -> (ok, expected, actual)`; its keyword
parameters, with their type hints, are the arguments a case may give it (a trailing `_` lets a
Python keyword be an argument name: `in_` is `in:` in YAML). A step declares its options and
the subject its checks receive, so a check written under the wrong step fails at load.
"""

from __future__ import annotations

import difflib
import inspect
import ipaddress
import typing
from dataclasses import dataclass, field
from typing import Any, Callable


class Prefix(str):
    """An IPv6 prefix, 'address/length' with a length of 0-128."""


class Address4(str):
    """An IPv4 address."""


class Address6(str):
    """An IPv6 address."""


class Hex(str):
    """Bytes written as hexadecimal digits."""


# Text values with a form of their own: how to parse each, and what it is called.
TEXT_FORMS = {Address4: (ipaddress.IPv4Address, "an IPv4 address"),
              Address6: (ipaddress.IPv6Address, "an IPv6 address"),
              Hex: (bytes.fromhex, "hexadecimal")}
# What a check judges; a "message" check applies to requests and replies alike.
SUBJECTS = {"reply", "request", "message", "packet", "packet6", "rows"}


@dataclass(frozen=True)
class Param:
    name: str  # as written in YAML
    python: str  # as the function takes it
    hint: Any
    required: bool


@dataclass(frozen=True)
class CheckKind:
    name: str
    fn: Callable
    subject: str
    params: dict[str, Param]


@dataclass(frozen=True)
class StepKind:
    name: str
    fn: Callable
    subject: str | None
    options: dict[str, Any]
    required: frozenset[str] = field(default_factory=frozenset)


CHECKS: dict[str, CheckKind] = {}
STEPS: dict[str, StepKind] = {}
# Options every step takes.
COMMON = {"requirements": list[str], "precondition": bool, "title": str, "timeout": float}


def check(subject: str):
    """Register a check judging `subject`; its keyword parameters are its YAML arguments."""
    if subject not in SUBJECTS:
        raise ValueError(f"unknown subject {subject!r}")

    def register(fn):
        hints = typing.get_type_hints(fn)
        params = {}
        for p in list(inspect.signature(fn).parameters.values())[2:]:
            if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                raise TypeError(f"check {fn.__name__}: *args/**kwargs hide unknown arguments")
            yaml_name = p.name.rstrip("_")
            params[yaml_name] = Param(yaml_name, p.name, hints.get(p.name, Any),
                                      p.default is inspect.Parameter.empty)
        CHECKS[fn.__name__] = CheckKind(fn.__name__, fn, subject, params)
        return fn
    return register


def step(name: str, *, subject: str | None = None, required=(), **options):
    """Register a step executor `fn(run, step)` under `name` with its typed options."""
    def register(fn):
        STEPS[name] = StepKind(name, fn, subject, {k.rstrip("_"): v for k, v in
                                                   options.items()}, frozenset(required))
        return fn
    return register


def subject_fits(check_subject: str, step_subject: str | None) -> bool:
    if check_subject == step_subject:
        return True
    return check_subject == "message" and step_subject in ("reply", "request")


def _suggest(word: str, known) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def type_problem(value, hint) -> str | None:
    """Why `value` (from YAML) does not fit `hint`, or None. `$variables` fit anything: they are
    resolved when the case runs."""
    if isinstance(value, str) and value.startswith("$"):
        return None
    if hint is Any:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        problems = [type_problem(value, a) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    if origin is typing.Literal:
        known = typing.get_args(hint)
        return None if value in known else \
            f"{value!r} is not one of {list(known)}{_suggest(str(value), known)}"
    if origin in (list, tuple):
        if not isinstance(value, list):
            return f"expected a list, got {value!r}"
        (item,) = typing.get_args(hint)[:1] or (Any,)
        for i, v in enumerate(value):
            problem = type_problem(v, item)
            if problem:
                return f"item {i}: {problem}"
        return None
    if origin is dict:
        return None if isinstance(value, dict) else f"expected a mapping, got {value!r}"
    if hint is bool:
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else \
            f"expected an integer, got {value!r}"
    if hint is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else \
            f"expected a number, got {value!r}"
    if hint is Prefix:
        try:
            net = ipaddress.IPv6Network(str(value), strict=False)
            if "/" not in str(value):
                raise ValueError("no /length")
        except ValueError as exc:
            return f"{value!r} is not an IPv6 prefix address/0-128 ({exc})"
        return None if net.prefixlen <= 128 else f"{value!r}: length over 128"
    if hint in TEXT_FORMS:
        parse, what = TEXT_FORMS[hint]
        try:
            parse(str(value))
        except ValueError:
            return f"{value!r} is not {what}"
        return None
    if hint is str:
        return None if isinstance(value, (str, int, float)) else f"expected text, got {value!r}"
    if isinstance(hint, type):
        return None if isinstance(value, hint) else \
            f"expected {hint.__name__}, got {type(value).__name__}"
    return None


def check_problems(spec: dict, step_subject: str | None) -> list[tuple[str, str]]:
    """(key, problem) pairs for one `{check: name, ...}` entry of a case file."""
    name = spec.get("check")
    if name not in CHECKS:
        return [("check", f"unknown check {name!r}{_suggest(str(name), CHECKS)}")]
    kind = CHECKS[name]
    problems = []
    if not subject_fits(kind.subject, step_subject):
        problems.append(("check", f"{name} judges a {kind.subject}, but this step observes "
                                  f"{'nothing to check' if step_subject is None else 'a ' + step_subject}"))
    for key, value in spec.items():
        if key in ("check", "requirements"):
            continue
        if key == "pics":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append((key, "expected a list of PICS items (`!item`: not claimed)"))
            continue
        if key not in kind.params:
            problems.append((key, f"unknown argument {key!r} for check {name}"
                                  f"{_suggest(key, kind.params)}; it takes "
                                  f"{sorted(kind.params) or 'no arguments'}"))
            continue
        problem = type_problem(value, kind.params[key].hint)
        if problem:
            problems.append((key, problem))
    for param in kind.params.values():
        if param.required and param.name not in spec:
            problems.append((param.name, f"check {name} needs argument {param.name!r}"))
    return problems


def option_problems(kind: StepKind, body: dict) -> list[tuple[str, str]]:
    problems = []
    allowed = {**kind.options, **COMMON}
    for key, value in body.items():
        if key not in allowed:
            problems.append((key, f"unknown option {key!r} for step {kind.name}"
                                  f"{_suggest(key, allowed)}; expected one of {sorted(allowed)}"))
            continue
        problem = type_problem(value, allowed[key])
        if problem:
            problems.append((key, problem))
    for key in kind.required:
        if key not in body:
            problems.append((key, f"step {kind.name} needs option {key!r}"))
    return problems


def call_check(name: str, ctx, subject, args: dict):
    kind = CHECKS[name]
    return kind.fn(ctx, subject, **{kind.params[k].python: v for k, v in args.items()})
