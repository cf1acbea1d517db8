"""A node's control commands (`dsmip4 ctl SOCKET COMMAND`), answered from its engine: one
answer whether the engine runs on real sockets or in the in-memory runner."""

from __future__ import annotations


def answer(engine, role: str, line: str, now: float) -> tuple[dict, list]:
    """The JSON answer to one control command and the engine actions it caused."""
    words = line.split()
    if not words:
        return {"error": "empty command"}, []
    cmd, args = words[0], words[1:]
    if cmd == "status":
        out = {"role": role, "time": now}
        if role == "ha":
            out.update(bindings=len(engine.bindings), stats=engine.stats)
        elif role == "fa":
            out.update(visitors=len(engine.visitors))
        else:
            out.update(engine.status(now))
        return out, []
    if cmd == "bindings" and role == "ha":
        return {"bindings": engine.binding_table(now)}, []
    if cmd == "visitors" and role == "fa":
        return {"visitors": engine.visitor_list(now)}, []
    if role == "mn":
        actions = None
        if cmd == "attach-fa" and len(args) == 1:
            actions = engine.attach_fa(args[0], now)
        elif cmd == "attach-colocated" and len(args) == 1:
            actions = engine.attach_colocated(args[0], now)
        elif cmd == "deregister":
            actions = engine.deregister(now)
        elif cmd == "home":
            actions = engine.return_home(now)
        elif cmd == "join" and len(args) == 1:
            actions = engine.join_group(args[0], now)
        elif cmd == "leave" and len(args) == 1:
            actions = engine.leave_group(args[0], now)
        if actions is not None:
            return {"ok": True, **engine.status(now)}, list(actions)
    return {"error": f"unknown command {line!r} for a {role}"}, []


def attach_at_start(engine, attach: dict, now: float) -> list:
    """An MN's first registration, from its configuration's `attach`."""
    if attach.get("mode") == "fa":
        return list(engine.attach_fa(attach["fa"], now))
    if attach.get("mode") == "colocated":
        return list(engine.attach_colocated(attach["care_of_address"], now))
    return []
