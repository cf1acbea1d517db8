#!/usr/bin/env python3
"""The mutation score of the YAML suite, from the results `mutmut run` left in mutants/.

Prints mutants, killed, survived, no tests (no case reaches the code) and timed out, and
writes every mutant that was not killed to docs/mutation-survivors.md with a one-line reason:

- a triage rule (below) that shows the change cannot be seen from outside the device: the
  wording of a log record or an error message, a statistics counter, the report renderer;
- a reason written by hand in docs/mutation-triage.yaml (mutant name -> reason; equivalent
  mutants say why they are equivalent);
- otherwise `open`: a behaviour change no case catches yet (a gap to close with a case).

The score is (killed + timed out) / (mutants - those triaged as equivalent or unobservable).

    python tools/mutation_report.py [--mutants DIR] [--out FILE] [--check PERCENT]
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import io
import json
import re
import sys
import time
import tokenize
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TRIAGE = ROOT / "docs" / "mutation-triage.yaml"
OUT = ROOT / "docs" / "mutation-survivors.md"
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          None: "not checked", 34: "skipped", 36: "timeout", -24: "timeout", 24: "timeout",
          152: "timeout", 255: "timeout", -11: "crashed", -9: "crashed"}
# Literals the suite does observe (route events plumb routes; the log check reads security
# exceptions; the FA's visitor record feeds its host route): a change to them is behaviour.
OBSERVED_WORDS = ("security-exception", "route-add", "route-del", "registered",
                  "visitor-added", "prefix", "home_address", "care_of_address")
OBSERVED_EVENTS = {"security-exception", "route-add", "route-del", "registered",
                   "visitor-added"}
# The state views a profile's state readers return (`dsmip4 ctl`), each with the keys the
# suite's row checks read (conformance/suite/checks.py, "rows" checks: bindings by home
# address with their prefixes and groups; visitors by home address; the MN's registration
# flags and its prefix rows). The rest are for operators.
STATE_READ_BY_VIEW = {
    "Binding.to_dict": {"home_address", "prefixes", "groups"},
    "Visitor.to_dict": {"home_address"},
    "MobileNode.status": {"registered", "ha_supports_dsmip", "prefixes"},
    "PrefixState.to_dict": {"prefix", "accepted", "tunnel"},
}
STATE_VIEWS = set(STATE_READ_BY_VIEW)
STATE_READ = set().union(*STATE_READ_BY_VIEW.values())  # read in some view
# The reference device's own code: its engines and the adapters it runs with on a lab. The
# in-memory runner runs only this code mutated (conformance/adapters/device_scope.py); the
# judge's codec stays clean, as a vendor's device never shares it.
DEVICE_CODE = ("conformance/nodes/ha.py", "conformance/nodes/mn.py", "conformance/nodes/fa.py",
               "conformance/nodes/prefixes.py", "conformance/nodes/timers.py",
               "conformance/nodes/actions.py", "conformance/nodes/config.py",
               "conformance/adapters/runner.py", "conformance/adapters/linux.py",
               "conformance/adapters/control.py")


@dataclass
class Mutant:
    name: str
    file: str
    function: str
    status: str
    line: int = 0
    before: str = ""
    after: str = ""
    event: str | None = None  # the log record (Event) the change sits in, if any
    log_detail: bool = False  # the change is in the details of a log record
    observation: bool = False  # the change only decides or words a decoder's Observation
    kind_branch: str | None = None  # the message class whose `kind is X` branch holds it
    built_fields: tuple | None = None  # (class, fields) a constructor call's change sets
    unused_argument: str | None = None  # "method(param)" when only an unused argument changes
    error_detail: bool = False  # the change is in what a DecodeError says, not whether
    reason: str = ""
    kind: str = "open"  # open | unobservable | equivalent


def load(mutants: Path) -> list[Mutant]:
    out = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        source = meta.with_suffix("")
        rel = str(source.relative_to(mutants))
        codes = json.loads(meta.read_text()).get("exit_code_by_key") or {}
        defs = _definitions(source)
        for name, code in codes.items():
            function = name.rsplit(".", 1)[-1]
            m = Mutant(name, rel, function.split("__mutmut_")[0].replace("ǁ", ".").lstrip("x_."),
                       STATUS.get(code, "suspicious"))
            _diff(m, defs, function)
            out.append(m)
    return out


def _names_in(node) -> set[str]:
    """Every name and attribute a piece of code refers to, without leading underscores."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id.lstrip("_"))
        elif isinstance(n, ast.Attribute):
            out.add(n.attr.lstrip("_"))
        elif isinstance(n, ast.alias):
            out.add(n.name.rsplit(".", 1)[-1].lstrip("_"))
    return out


def device_builds(root: Path = ROOT) -> set[str]:
    """The classes the device's code constructs (`Name(...)`): the only message parts it
    ever hands the encoder."""
    built = set()
    for pattern in DEVICE_CODE:
        for path in root.glob(pattern):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    owner = getattr(getattr(node.func, "value", None), "id", None)
                    built.update(n for n in (name, owner) if n)  # Class(...), Class.of(...)
    return built


def device_reachable(root: Path = ROOT) -> set[str]:
    """The codec functions the device's code can call, by name (a function reached through
    another codec function counts): a name-based closure, so it errs on the side of
    reachable."""
    reached = set()
    for pattern in DEVICE_CODE:
        for path in root.glob(pattern):
            reached |= _names_in(ast.parse(path.read_text()))
    calls: dict[str, set[str]] = {}
    for path in (root / "conformance" / "codec").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # dispatch tables: `_BY_TYPE = {1: decode_request, ...}`
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in _names_in(target):
                        calls.setdefault(name, set()).update(_names_in(node.value))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                calls.setdefault(node.name.lstrip("_"), set()).update(_names_in(node))
            elif isinstance(node, ast.ClassDef):
                # Building a class runs its dataclass hooks and reaches its methods by name.
                calls.setdefault(node.name.lstrip("_"), set()).update(
                    n.name.lstrip("_") for n in node.body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    todo = [n for n in reached if n in calls]
    while todo:
        for name in calls.get(todo.pop(), ()):
            if name not in reached:
                reached.add(name)
                todo.append(name)
    return reached


def _definitions(source: Path) -> dict[str, tuple[int, list[str]]]:
    text = source.read_text()
    lines = text.splitlines()
    found = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "__mutmut_" in node.name:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            found[node.name] = (start, lines[start - 1:node.end_lineno])
    return found


def _diff(m: Mutant, defs, function: str) -> None:
    orig_name = function.split("__mutmut_")[0] + "__mutmut_orig"
    orig, mutated = defs.get(orig_name), defs.get(function)
    if not orig or not mutated:
        return
    a = [line.replace(orig_name, "f") for line in orig[1]]
    b = [line.replace(function, "f") for line in mutated[1]]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if tag != "equal":
            m.line = orig[0] + i1
            m.before = " ".join(x.strip() for x in a[i1:i2])[:100]
            m.after = " ".join(x.strip() for x in b[j1:j2])[:100]
            m.event = _event_around(a, i1, max(i2, i1 + 1))
            m.log_detail = _in_log_detail(a, i1, max(i2, i1 + 1))
            m.observation = _in_observation(a, i1, max(i2, i1 + 1)) and \
                _in_observation(b, j1, max(j2, j1 + 1))
            m.kind_branch = _kind_branch(a, i1, max(i2, i1 + 1))
            m.built_fields = _constructor_change(a, b, i1, max(i2, i1 + 1))
            m.unused_argument = _unused_argument_change(m.file, a, b, i1, max(i2, i1 + 1))
            m.error_detail = _error_arity(a, i1, max(i2, i1 + 1)) == \
                _error_arity(b, j1, max(j2, j1 + 1)) is not None
            return


def _call_spanning(tree, lo: int, hi: int, wanted):
    """The innermost call spanning lines lo..hi that `wanted(call)` accepts, or None."""
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.lineno <= lo and node.end_lineno >= hi and \
                wanted(node) and (best is None or node.lineno >= best.lineno):
            best = node
    return best


def _is_constructor(call) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id[:1].isupper()


def _is_own_method(call) -> bool:
    return isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", None) == "self"


def _constructor_change(a: list[str], b: list[str], first: int, last: int):
    """(class, changed field names) when the change only replaces arguments of a
    `Class(...)` call, same number of arguments before and after; else None."""
    ta, tb = _parse(a), _parse(b)
    if ta is None or tb is None:
        return None
    ca = _call_spanning(ta, first + 1, last, _is_constructor)
    cb = _call_spanning(tb, first + 1, last, _is_constructor)
    if ca is None or cb is None or ast.dump(ca.func) != ast.dump(cb.func) or \
            len(cb.args) not in (len(ca.args), len(ca.args) - 1) or \
            [k.arg for k in ca.keywords] != [k.arg for k in cb.keywords]:
        return None
    fields = MESSAGE_FIELDS.get(ca.func.id)
    if fields is None or len(ca.args) > len(fields):
        return None
    changed = set()
    if len(cb.args) < len(ca.args):
        # An argument dropped: every later field shifts one place and the last takes its
        # default. A required field left unfilled is a TypeError, which the device shows.
        if len(cb.args) < REQUIRED_FIELDS.get(ca.func.id, len(fields)):
            return None
        first_diff = next((i for i, (x, y) in enumerate(zip(ca.args, cb.args))
                           if ast.dump(x) != ast.dump(y)), len(cb.args))
        return ca.func.id, frozenset(fields[first_diff:len(ca.args)])
    for i, (x, y) in enumerate(zip(ca.args, cb.args)):
        if ast.dump(x) != ast.dump(y):
            changed.add(fields[i])
    for x, y in zip(ca.keywords, cb.keywords):
        if ast.dump(x.value) != ast.dump(y.value):
            changed.add(x.arg)
    return (ca.func.id, frozenset(changed)) if changed else None


@functools.lru_cache(maxsize=None)
def _unused_parameters(rel: str) -> dict[str, list[tuple[str, bool]]]:
    """Each method of a source file: its parameters after self, with whether the body reads
    them for anything but a log record (a name read only inside `Event(...)` calls, or only
    to decide whether to log, changes no packet)."""
    path = ROOT / rel
    if not path.exists():
        return {}
    out = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.args.args and \
                node.args.args[0].arg == "self":
            out[node.name] = [(a.arg, a.arg in _read_outside_logs(node))
                              for a in node.args.args[1:]]
    return out


def _read_outside_logs(function) -> set[str]:
    """The names a function reads outside its Event(...) calls and `if not log:` guards."""
    skip = set()
    for n in ast.walk(function):
        if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Event":
            skip |= {id(x) for x in ast.walk(n)}
        if isinstance(n, ast.If) and ast.unparse(n.test) in ("not log", "log") and \
                all(isinstance(s, ast.Return) for s in n.body):
            # `if not log: return actions[:1]`: only whether the log record goes out
            skip |= {id(x) for x in ast.walk(n.test)}
    return {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and id(n) not in skip}


def _unused_argument_change(rel: str, a: list[str], b: list[str], first: int, last: int):
    """"method(param)" when the change only replaces (same count of arguments) arguments of a
    `self.method(...)` call whose parameters at those places the method never reads (but for
    log records)."""
    ta, tb = _parse(a), _parse(b)
    if ta is None or tb is None:
        return None
    ca = _call_spanning(ta, first + 1, last, _is_own_method)
    cb = _call_spanning(tb, first + 1, last, _is_own_method)
    if ca is None or cb is None or ca.func.attr != cb.func.attr or \
            len(ca.args) != len(cb.args) or \
            [k.arg for k in ca.keywords] != [k.arg for k in cb.keywords]:
        return None
    params = _unused_parameters(rel).get(ca.func.attr)
    if not params or len(params) < len(ca.args):
        return None
    names = [p for p, _ in params]
    changed = [i for i, (x, y) in enumerate(zip(ca.args, cb.args)) if ast.dump(x) != ast.dump(y)]
    changed += [names.index(x.arg) for x, y in zip(ca.keywords, cb.keywords)
                if ast.dump(x.value) != ast.dump(y.value) and x.arg in names]
    if any(ast.dump(x.value) != ast.dump(y.value) and x.arg not in names
           for x, y in zip(ca.keywords, cb.keywords)):
        return None
    if not changed or any(params[i][1] for i in changed):
        return None
    return f"{ca.func.attr}({', '.join(params[i][0] for i in changed)})"


def _message_fields(root: Path = ROOT, required: dict | None = None) -> dict[str, list[str]]:
    """Each codec dataclass's fields in constructor order (those with init=False left out);
    `required` gets how many of them have no default."""
    out = {}
    for path in (root / "conformance" / "codec").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            names = []
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    value = item.value
                    if isinstance(value, ast.Call) and any(
                            k.arg == "init" and getattr(k.value, "value", True) is False
                            for k in value.keywords):
                        continue
                    names.append(item.target.id)
                    if value is None and required is not None and \
                            required.get(node.name, 0) == len(names) - 1:
                        required[node.name] = len(names)
            if names:
                out[node.name] = names
                if required is not None:
                    required.setdefault(node.name, 0)
    return out


def device_reads(root: Path = ROOT) -> set[str]:
    """Every attribute the device's code reads, its own or through the codec functions it
    calls: a decoded field outside this set never changes what the device does."""
    reachable = device_reachable(root)
    attrs = set()
    for pattern in DEVICE_CODE:
        for path in root.glob(pattern):
            attrs |= {n.attr for n in ast.walk(ast.parse(path.read_text()))
                      if isinstance(n, ast.Attribute)}
    for path in (root / "conformance" / "codec").glob("*.py"):
        if path.name in ("encode.py", "render.py"):
            continue  # they read what the device built, never what it decoded
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.name.lstrip("_") in reachable and "encode" not in node.name:
                attrs |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    return attrs


REQUIRED_FIELDS: dict[str, int] = {}
MESSAGE_FIELDS = _message_fields(required=REQUIRED_FIELDS)


def _offset_readers(root: Path = ROOT) -> set[str]:
    """The names through which the device's code reads a decoded `.offset`."""
    reachable = device_reachable(root)
    names = set()
    paths = [p for pattern in DEVICE_CODE for p in root.glob(pattern)]
    for path in paths + list((root / "conformance" / "codec").glob("*.py")):
        if path.name in ("encode.py", "render.py", "errors.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if "/codec/" in str(path) and isinstance(node, ast.FunctionDef) and \
                    node.name.lstrip("_") not in reachable:
                continue
            if isinstance(node, ast.Attribute) and node.attr == "offset":
                names.add(getattr(node.value, "id", "?"))
    return names


# The device reads a decoded extension's offset only to find what an authenticator covers
# (auth.py, the HA's own check) and a decoding error's offset only to log it: an `offset`
# given to any other extension never changes what it does. Checked against the code each
# run: a read through another name turns the rule off.
OFFSET_ONLY_ON = frozenset({"AuthExtension"}) \
    if _offset_readers() <= {"auth", "ext", "err", "exc"} else None


def _error_arity(body: list[str], first: int, last: int) -> int | None:
    """The number of arguments of the `DecodeError(...)` call spanning the lines, or None."""
    tree = _parse(body)
    if tree is None:
        return None
    lo, hi = first + 1, last
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DecodeError" and \
                node.lineno <= lo and node.end_lineno >= hi:
            return len(node.args) + len(node.keywords)
    return None


def _parse(body: list[str]):
    import textwrap

    try:
        return ast.parse(textwrap.dedent("\n".join(body)))
    except SyntaxError:
        return None


def _kind_branch(body: list[str], first: int, last: int) -> str | None:
    """The class X of the innermost `if kind is X:` / `elif kind is X:` branch whose body
    holds lines first..last, or None."""
    tree = _parse(body)
    if tree is None:
        return None
    lo, hi, found = first + 1, last, None
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and \
                isinstance(node.test.ops[0], ast.Is) and \
                getattr(node.test.left, "id", None) == "kind" and node.body and \
                node.body[0].lineno <= lo and node.body[-1].end_lineno >= hi:
            name = getattr(node.test.comparators[0], "id", None)
            if found is None or node.lineno > found[0]:
                found = (node.lineno, name)
    return found[1] if found else None


def _records_observation(stmt) -> bool:
    """`observations.append(...)`: a statement that only records an Observation."""
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and \
        getattr(stmt.value.func, "attr", None) == "append" and \
        getattr(stmt.value.func.value, "id", None) == "observations"


@functools.lru_cache(maxsize=None)
def _observation_only_functions(root: Path = ROOT) -> frozenset[str]:
    """Codec functions whose whole body only records Observations (`_check_prefix`)."""
    out = set()
    for path in (root / "conformance" / "codec").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                body = [b for b in node.body if not (isinstance(b, ast.Expr) and
                                                     isinstance(b.value, ast.Constant))]
                if body and all(_records_observation(b) or isinstance(b, ast.If) and
                                _only_observations(b) for b in body):
                    out.add(node.name)
    return frozenset(out)


def _in_observation(body: list[str], first: int, last: int) -> bool:
    """Whether lines first..last only decide whether, or with what words, a decoder
    records an Observation: inside an `observations.append(...)`, or in the condition of an
    `if` whose branches do nothing else. The device's code never reads observations (only
    the suite's checks do), so such a change cannot show in what a device sends."""
    tree = _parse(body)
    if tree is None:
        return False
    lo, hi = first + 1, last
    for node in ast.walk(tree):
        if _records_observation(node) and node.lineno <= lo and node.end_lineno >= hi:
            return True
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and \
                getattr(node.value.func, "id", None) in _observation_only_functions() and \
                node.lineno <= lo and node.end_lineno >= hi:
            return True  # a call whose only effect is to record Observations
        if isinstance(node, ast.If) and node.test.lineno <= lo and node.test.end_lineno >= hi:
            branches = node.body + node.orelse
            if branches and all(_records_observation(b) or isinstance(b, ast.If) and
                                _only_observations(b) for b in branches):
                return True
    return False


def _only_observations(node) -> bool:
    return all(_records_observation(b) or isinstance(b, ast.If) and _only_observations(b)
               for b in node.body + node.orelse)


def _in_log_detail(body: list[str], first: int, last: int) -> bool:
    """Whether the change is in what a log record says: the arguments of a
    `_security_exception(...)` call (the suite checks that one is logged, not its words), the
    fields of an `Event("security-exception", {...})`, or an `event_data=` argument."""
    tree = _parse(body)
    if tree is None:
        return False
    lo, hi = first + 1, last
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == \
                "_security_exception" and node.lineno <= lo and node.end_lineno >= hi:
            return True
        if isinstance(node, ast.keyword) and node.arg == "event_data" and \
                node.value.lineno <= lo and node.value.end_lineno >= hi:
            return True
        # Event("security-exception", {...}): the record's name is checked, its fields not.
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Event" and \
                len(node.args) > 1 and isinstance(node.args[0], ast.Constant) and \
                node.args[0].value == "security-exception" and \
                node.args[1].lineno <= lo and node.args[1].end_lineno >= hi:
            return True
    return False


def _event_around(body: list[str], first: int, last: int) -> str | None:
    """The name of the Event(...) call that spans the changed lines ("?" when its name is
    not a literal), or None when the change is not inside one."""
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent("\n".join(body)))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Event" and \
                node.lineno - 1 <= first and node.end_lineno >= last:
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.IfExp) and all(
                    isinstance(b, ast.Constant) and isinstance(b.value, str)
                    for b in (arg.body, arg.orelse)):
                return f"{arg.body.value}|{arg.orelse.value}"  # either name, by a condition
            return arg.value if isinstance(arg, ast.Constant) and \
                isinstance(arg.value, str) else "?"
    return None


def _tokens(line: str) -> list[tuple[int, str]]:
    try:
        return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(line).readline)
                if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER,
                                  tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []


def _dict_keys(line: str) -> set[str]:
    """The string keys of the dict entries on a line (`"key": value`)."""
    return set(re.findall(r'"([A-Za-z_]+)"\s*:', line))


def _string_only(before: str, after: str) -> bool:
    """Whether the change is inside string literals only (same code around them)."""
    a, b = _tokens(before), _tokens(after)
    if not a or len(a) != len(b):
        return False
    changed = [(x, y) for x, y in zip(a, b) if x != y]
    return bool(changed) and all(x[0] == tokenize.STRING and y[0] == tokenize.STRING
                                 for x, y in changed)


_DENIAL_REPLY = re.compile(r"_reply\(request, ReplyCode\.(?!ACCEPTED)\w+, (\d+),")


def _denial_lifetime_only(before: str, after: str) -> bool:
    """Whether the change only alters the lifetime argument of a reply with a denial code."""
    a, b = _DENIAL_REPLY.search(before), _DENIAL_REPLY.search(after)
    return bool(a and b) and a.group(1) != b.group(1) and \
        before[:a.start(1)] + before[a.end(1):] == after[:b.start(1)] + after[b.end(1):]


_BYTEORDER = re.compile(r'(\b(?:to_bytes|from_bytes)\([^()]*(?:\([^()]*\))?[^()]*?),\s*"big"\)')


_ENCODE_ERROR = re.compile(r"EncodeError\(.*\)")


def _wire_length_none(line: str) -> set[str]:
    """The line with one use of `wire_length` replaced as if it were always None."""
    out = set()
    for old, new in (("ext.wire_length", "None"), ("wire_length", "None"),
                     ("ext.wire_length is None", "(ext.wire_length is None) or True"),
                     ("wire_length is None", "(wire_length is None) or True")):
        start = 0
        while (i := line.find(old, start)) >= 0:
            out.add(line[:i] + new + line[i + len(old):])
            start = i + 1
    return out


def _default_argument_only(before: str, after: str) -> str | None:
    """Why a change is equivalent when it only drops an argument equal to its default or
    changes what the library treats alike; None otherwise."""
    if _BYTEORDER.sub(r"\1, )", before) == after:
        return "equivalent: byteorder \"big\" is the default of int.to_bytes/from_bytes " \
            "since Python 3.11 (the project requires >= 3.11)"
    if re.sub(r"unpack_from\((\w+), 0\)", r"unpack_from(\1, )", before) == after != before:
        return "equivalent: 0 is the default offset of struct.unpack_from"
    if "wire_length" in before and after in _wire_length_none(before):
        return "equivalent: `wire_length` is always None on the device (no device code sets " \
            "it and the decoder never does; only the suite's deliberately damaged messages " \
            "carry one), so the encoder takes the length of the body either way"
    if "EncodeError(" in before and _ENCODE_ERROR.sub("EncodeError(...)", before) == \
            _ENCODE_ERROR.sub("EncodeError(...)", after):
        return "equivalent: only the message of an EncodeError changes; the error is raised " \
            "all the same"
    if "_tunnel_to(" in before and '"hoa"' in before and any(
            after == before.replace('"hoa"', new, 1) for new in ('"XXhoaXX"', '"HOA"', "None")):
        return "equivalent: the HA's _tunnel_to and _tunnel_mtu treat every mode but \"coa\" " \
            "as the home-address tunnel"
    if before.replace('"md5"', '"MD5"') == after and '"md5"' in before:
        return "equivalent: hashlib looks digest names up case-insensitively (\"MD5\" is md5)"
    return None


def classify(m: Mutant, manual: dict, reachable: set[str] | None = None,
             built: set[str] | None = None, reads: set[str] | None = None) -> None:
    if m.name in manual:
        reason = str(manual[m.name])
        m.kind = "equivalent" if reason.startswith("equivalent") else \
            "unobservable" if reason.startswith("not observable") else "open"
        m.reason = reason
        return
    if m.file.endswith("codec/render.py") or (m.file.endswith("codec/errors.py") and
                                               m.function.endswith(".to_dict")):
        m.kind, m.reason = "unobservable", "not observable on the wire: renders decoded " \
            "messages and decoding errors for reports and logs"
        return
    if reachable is not None and "/codec/" in m.file and \
            m.function.rsplit(".", 1)[-1].lstrip("_") not in reachable:
        m.kind, m.reason = "unobservable", "not the device's code: only the suite's judge " \
            "calls it (the codec's own tests cover it: known answers, fuzzing, scapy, tshark)"
        return
    text = m.before
    if built is not None and m.kind_branch and m.file.endswith("codec/encode.py") and \
            m.kind_branch not in built:
        m.kind, m.reason = "unobservable", f"not the device's code: the encoder's branch " \
            f"for {m.kind_branch}, which no device code builds (only the suite's messages " \
            "carry it)"
        return
    if reads is not None and m.built_fields and OFFSET_ONLY_ON is not None and \
            m.built_fields[0] not in OFFSET_ONLY_ON:
        reads = reads - {"offset"}
    if reads is not None and m.built_fields and "/codec/" in m.file and \
            not m.built_fields[1] & reads:
        m.kind, m.reason = "unobservable", "not observable on the wire: the decoder fills " \
            f"{m.built_fields[0]}.{'/'.join(sorted(m.built_fields[1]))}, which no device " \
            "code reads"
        return
    same = _default_argument_only(m.before, m.after)
    if same:
        m.kind, m.reason = "equivalent", same
        return
    if _denial_lifetime_only(m.before, m.after):
        m.kind, m.reason = "equivalent", "equivalent: only the Lifetime of a denial changes, " \
            "which RFC 3344 §3.4 leaves unspecified and has ignored on reception"
        return
    if m.unused_argument:
        m.kind, m.reason = "equivalent", f"equivalent: the argument goes to " \
            f"{m.unused_argument}, a parameter the method never reads but for its log records"
        return
    keys = _dict_keys(m.before)
    renamed = keys - _dict_keys(m.after)
    if m.function in STATE_READ_BY_VIEW and renamed and \
            not renamed & STATE_READ_BY_VIEW[m.function]:
        m.kind, m.reason = "unobservable", "not observable on the wire: renames or drops a " \
            f"key of the device's state view that no check reads ({', '.join(sorted(renamed))})"
        return
    if m.function in STATE_VIEWS and keys and not keys & STATE_READ:
        m.kind, m.reason = "unobservable", "not observable on the wire: a field of the " \
            f"device's state view that no check reads ({', '.join(sorted(keys))})"
        return
    if m.observation:
        m.kind, m.reason = "unobservable", "not observable on the wire: whether or how a " \
            "decoder records an Observation, which no device code reads (the suite's checks " \
            "do; the codec's tests judge them)"
        return
    if m.log_detail:
        m.kind, m.reason = "unobservable", "not observable on the wire: the details of a log " \
            "record (the suite checks that a security exception is logged, not its fields)"
        return
    if m.error_detail:
        m.kind, m.reason = "unobservable", "not observable on the wire: what a decoding error " \
            "says (offset, field, RFC section); the verdict rests on the error being raised"
        return
    if m.event is not None and m.event != "?" and \
            not set(m.event.split("|")) & OBSERVED_EVENTS:
        m.kind, m.reason = "unobservable", f"not observable on the wire: the {m.event!r} log " \
            "record, which the suite does not read"
        return
    if "self.stats[" in text:
        m.kind, m.reason = "unobservable", "not observable on the wire: a statistics counter " \
            "(`ctl status` only)"
        return
    if _string_only(m.before, m.after) and not any(w in text for w in OBSERVED_WORDS):
        if "Error(" in text or "raise " in text or "reason" in text or "error" in text:
            m.kind, m.reason = "unobservable", "not observable on the wire: the wording of " \
                "an error or log message"
            return
        if "Event(" in text or "\"level\"" in text or "warning" in text or "info" in text:
            m.kind, m.reason = "unobservable", "not observable on the wire: the name or " \
                "wording of a log record the suite does not read"
            return
    m.reason = "open: no case reaches this code" if m.status == "no tests" else \
        "open: a behaviour change no case catches yet"


def triage(mutants: list[Mutant]) -> list[Mutant]:
    """Classify every mutant that was not killed (by the rules and docs/mutation-triage.yaml);
    the mutants, for chaining."""
    manual = (yaml.safe_load(TRIAGE.read_text()) if TRIAGE.exists() else None) or {}
    reachable, built, reads = device_reachable(), device_builds(), device_reads()
    for m in mutants:
        if m.status not in ("killed", "timeout", "not checked"):
            classify(m, manual, reachable, built, reads)
    return mutants


def write_report(mutants: list[Mutant], counts: Counter, score: float, out: Path) -> None:
    rows = [m for m in mutants if m.status not in ("killed", "timeout", "not checked")]
    lines = [
        "# Mutation testing: mutants the YAML suite does not kill",
        "",
        f"Written by `make mutation` ({time.strftime('%Y-%m-%d', time.gmtime())}): mutmut mutates "
        "`conformance/nodes/{ha,mn,fa,prefixes}.py` and `conformance/codec/`; the killing test "
        "is the YAML suite run in memory against the mutated reference (`tests/mutation`). "
        "Only the device's code runs mutated: the suite's checks read the device's packets "
        "with a clean codec, as they would a vendor's device "
        "(`conformance/adapters/device_scope.py`).",
        "",
        "| mutants | killed | timed out | survived | no case reaches it | score |",
        "|---|---|---|---|---|---|",
        f"| {len(mutants)} | {counts['killed']} | {counts['timeout']} | {counts['survived']} | "
        f"{counts['no tests']} | {score:.1f}% |",
        "",
        "Score: (killed + timed out) / (mutants - equivalent or unobservable ones). Reasons: "
        "`not observable on the wire` (why), `equivalent` (why), or `open` (a gap: no case "
        "catches the change yet). Hand-written reasons live in `docs/mutation-triage.yaml`.",
        "",
        "| mutant | line | change | reason |",
        "|---|---|---|---|",
    ]
    for m in sorted(rows, key=lambda m: (m.kind != "open", m.file, m.name)):
        change = f"`{m.before}` → `{m.after}`".replace("|", "\\|") if m.before else ""
        lines.append(f"| {m.name.split('.', 2)[-1]} | {m.file}:{m.line} | {change} | "
                     f"{m.reason} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", default=str(ROOT / "mutants"))
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--check", type=float, default=None,
                        help="exit 1 when the score is below this percentage")
    args = parser.parse_args(argv)
    mutants = load(Path(args.mutants))
    if not mutants:
        print(f"mutation_report: no results under {args.mutants}: run `make mutation`",
              file=sys.stderr)
        return 2
    triage(mutants)
    counts = Counter(m.status for m in mutants)
    excluded = sum(1 for m in mutants if m.kind in ("equivalent", "unobservable"))
    caught = counts["killed"] + counts["timeout"]
    score = 100.0 * caught / max(1, len(mutants) - excluded)
    write_report(mutants, counts, score, Path(args.out))
    judged = [m for m in mutants if m.status not in ("killed", "timeout", "not checked")]
    kinds = Counter(m.kind for m in judged)
    print(f"mutants {len(mutants)}, killed {counts['killed']}, survived {counts['survived']}, "
          f"no case reaches {counts['no tests']}, timed out {counts['timeout']}"
          + (f", not checked {counts['not checked']}" if counts["not checked"] else ""))
    print(f"not killed: {kinds['unobservable']} not observable on the wire, "
          f"{kinds['equivalent']} equivalent, {kinds['open']} open")
    print(f"score: {score:.1f}% of the non-equivalent, observable mutants killed; "
          f"survivors in {args.out}")
    by_file = Counter(m.file for m in judged if m.kind == "open")
    print("open survivors by file: " + ", ".join(f"{f} {n}" for f, n in by_file.most_common()))
    if args.check is not None and score < args.check:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
