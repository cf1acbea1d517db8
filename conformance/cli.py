"""`dsmip4` command line. Each subcommand imports what it needs, so startup stays fast."""

from __future__ import annotations

import argparse
import json
import sys

from conformance import RFC, __version__


def _cmd_report(args) -> int:
    from pathlib import Path

    from conformance.reports.html_report import render_html
    from conformance.reports.writer import write_checksums

    folder = Path(args.folder)
    results_path = folder / "results.json"
    try:
        results = json.loads(results_path.read_text())
    except FileNotFoundError:
        print(f"dsmip4 report: {results_path}: no such file (give a run folder, "
              "reports/<run-id>)", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"dsmip4 report: {results_path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}",
              file=sys.stderr)
        return 2
    (folder / "report.html").write_text(render_html(results, folder))
    print(f"report: {folder / 'report.html'}")
    if args.pdf:
        from conformance.reports.pdf import NoBrowser, print_pdf

        try:
            pdf = print_pdf(folder / "report.html", folder / "report.pdf")
        except (NoBrowser, RuntimeError, OSError) as exc:
            print(f"dsmip4 report: no PDF: {exc}", file=sys.stderr)
            return 2
        print(f"pdf: {pdf}")
    write_checksums(folder)
    return 0


def _cmd_wireshark_plugin(args) -> int:
    from conformance import wireshark

    if not (args.install or args.dir):
        print(wireshark.LUA)
        print(f"load it once with: tshark -X lua_script:{wireshark.LUA} ...", file=sys.stderr)
        return 0
    try:
        path = wireshark.install(args.dir)
    except OSError as exc:
        where = args.dir or "the personal Lua plugin folder"
        print(f"dsmip4 wireshark-plugin: cannot install into {where}: {exc}", file=sys.stderr)
        return 2
    print(f"installed {path}; Wireshark and tshark load it at their next start "
          "(display filter: dsmip4)")
    return 0


def _cmd_decode(args) -> int:
    from conformance.codec import DecodeError, decode, message_to_dict, verify_authenticator

    text = "".join(args.hex.split()).removeprefix("0x")
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        print(f"dsmip4 decode: argument is not hex: {exc}", file=sys.stderr)
        return 2
    try:
        message = decode(data)
    except DecodeError as exc:
        print(f"dsmip4 decode: malformed message: {exc}", file=sys.stderr)
        return 2
    out = message_to_dict(message)
    if args.key is not None:
        try:
            key = bytes.fromhex(args.key)
        except ValueError as exc:
            print(f"dsmip4 decode: --key is not hex: {exc}", file=sys.stderr)
            return 2
        if hasattr(message, "extensions"):
            valid = verify_authenticator(data, message, key)
            out["auth"] = "absent" if valid is None else ("valid" if valid else "invalid")
        else:
            out["auth"] = "absent"
    print(json.dumps(out, indent=2))
    return 0


def _cmd_requirements(args) -> int:
    from conformance.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(args.catalog)
    except CatalogError as exc:
        print(f"dsmip4 requirements: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.to_dict() for r in catalog.requirements], indent=2))
        return 0
    for req in catalog.requirements:
        testable = req.testable if req.testable != "no" else f"no ({req.reason})"
        print(f"{req.id:<18} {req.rfc:<8} §{req.section:<7} {req.level:<11} "
              f"{','.join(req.roles):<9} {testable}")
        print(f"    {req.text}")
    print()
    print(catalog.summary())
    return 0


def _cmd_bench(args) -> int:
    from conformance import bench

    return bench.run(args.target, seconds=args.seconds, check=args.check, runs=args.runs)


def _cmd_node(args) -> int:
    from conformance.adapters.linux import PlumbingError
    from conformance.nodes.config import ConfigError, load_node_config

    try:
        config = load_node_config(args.config, args.command)
    except ConfigError as exc:
        print(f"dsmip4 {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.control_socket:
        config.runtime.control_socket = args.control_socket
    if args.log:
        config.runtime.log = args.log
    from conformance.adapters.runner import NodeRunner

    try:
        runner = NodeRunner(config)
    except PlumbingError as exc:
        print(f"dsmip4 {args.command}: cannot start: {exc}", file=sys.stderr)
        return 3
    return runner.run()


def _cmd_ctl(args) -> int:
    from conformance.adapters.runner import control_request

    try:
        reply = control_request(args.socket, " ".join(args.words), timeout=args.timeout)
    except (OSError, ValueError) as exc:
        print(f"dsmip4 ctl: {args.socket}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(reply, indent=2))
    return 1 if "error" in reply else 0


def _cmd_lab(args) -> int:
    from conformance.lab import builtin
    from conformance.lab.netns import LabError

    try:
        if args.action == "up":
            info = builtin.lab_up(args.mgmt_subnet)
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                print(info["testbed"])
            return 0
        if args.action == "down":
            removed, left = builtin.lab_down(args.prefix, all_labs=args.all)
            print(f"removed {len(removed)} lab(s)" + (f": {', '.join(removed)}" if removed
                                                      else ""))
            if left:
                print(f"left {len(left)} lab(s) whose run is still going: {', '.join(left)} "
                      "(name one with --prefix, or use --all)")
            return 0
        labs = builtin.lab_status()
        if args.json:
            print(json.dumps(labs, indent=2))
            return 0
        if not labs:
            print("no built-in lab exists")
        for lab in labs:
            present = sum(lab["namespaces"].values())
            print(f"{lab['prefix']}: {lab['state']} (owner {lab['owner']}), management "
                  f"{lab['mgmt_subnet']}, {present}/{len(lab['namespaces'])} namespaces, "
                  f"testbed {lab['testbed']}")
        return 0
    except LabError as exc:
        print(f"dsmip4 lab {args.action}: {exc}", file=sys.stderr)
        return 2


def _cmd_run(args) -> int:
    from conformance.runner import run

    return run(args)


def _cmd_selftest(args) -> int:
    from conformance.selftest import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsmip4", description="Dual-Stack Mobile IPv4 "
                                     "(RFC 5454) conformance suite")
    parser.add_argument("--version", action="version",
                        version=f"dsmip4 {__version__} (dsmip4-conformance, {RFC})")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("decode", help="decode one UDP port-434 payload given as hex")
    p.add_argument("hex", help="the UDP payload, hex (spaces allowed)")
    p.add_argument("--key", help="MN-HA key (hex) to verify the authenticator with")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("report", help="render a run folder's report.html again from its "
                       "results.json, and with --pdf its certificate as report.pdf")
    p.add_argument("folder", help="a run folder (reports/<run-id>)")
    p.add_argument("--pdf", action="store_true", help="also print report.pdf (headless "
                   "Chromium)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("wireshark-plugin", help="the Wireshark dissector for the DSMIPv4 "
                       "extension (RFC 5454): print its path, or install it")
    p.add_argument("--install", action="store_true",
                   help="copy it into Wireshark's personal Lua plugin folder")
    p.add_argument("--dir", help="install into this folder instead")
    p.set_defaults(func=_cmd_wireshark_plugin)

    p = sub.add_parser("requirements", help="print the requirement catalog")
    p.add_argument("--json", action="store_true", help="JSON instead of the plain listing")
    p.add_argument("--catalog", default=None, help="catalog file (default: the bundled one)")
    p.set_defaults(func=_cmd_requirements)

    for role, what in (("ha", "home agent"), ("fa", "foreign agent"), ("mn", "mobile node")):
        p = sub.add_parser(role, help=f"run the reference {what} in the foreground")
        p.add_argument("--config", required=True, help="node configuration (YAML)")
        p.add_argument("--control-socket", help="override runtime.control_socket")
        p.add_argument("--log", help="override runtime.log (JSON lines)")
        p.set_defaults(func=_cmd_node)

    p = sub.add_parser("ctl", help="query or drive a running node through its control socket")
    p.add_argument("socket")
    p.add_argument("words", nargs="+", metavar="command",
                   help="bindings | visitors | status | attach-fa ADDR | attach-colocated ADDR "
                        "| deregister | home | join GROUP | stop")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=_cmd_ctl)

    p = sub.add_parser("run", help="run the conformance suite (default: built-in lab, "
                       "reference implementation in every role)")
    p.add_argument("--testbed", action="append", help="testbed file (default: the built-in lab)")
    p.add_argument("--memory", action="store_true", help="no lab: the reference nodes in "
                   "memory on a simulated clock (the suite's own fast check; reference "
                   "profiles only)")
    p.add_argument("--memory-epoch", type=float, help="with --memory: the simulated clock's "
                   "start, to replay a run")
    p.add_argument("--dut", action="append", help="device profile under test, one per role")
    p.add_argument("--role", action="append", type=str.lower, choices=["ha", "mn", "fa"])
    p.add_argument("--requirement", action="append", help="only cases checking this id")
    p.add_argument("--section", action="append", help="only cases of this RFC section")
    p.add_argument("--case", action="append", help="only this case id")
    p.add_argument("--out", help="report folder (default reports/<run-id>)")
    p.add_argument("--expected-failures", help="per-device expected-failure file (YAML)")
    p.add_argument("--strict", action="store_true", help="NON-STRICT verdicts fail the run")
    p.add_argument("-n", "--workers", type=int, metavar="N", help="spread the cases over N "
                   "labs (pytest-xdist): N built-in labs, or one per --testbed given")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="-- PYTEST_ARGS",
                   help="after --, arguments handed to pytest as they are (e.g. -- -x -k gre)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("selftest", help="prove every case can fail: run the suite against "
                       "the clean reference and against each named fault")
    p.add_argument("--testbed", help="testbed file (default: a built-in lab)")
    p.add_argument("--fault", action="append", help="only this fault")
    p.add_argument("--memory-only", action="store_true", help="only the in-memory phase (no "
                   "lab, no root)")
    p.add_argument("--skip-clean", action="store_true", help="skip the clean reference run")
    p.add_argument("--out", help="work folder for the runs and the matrix")
    p.set_defaults(func=_cmd_selftest)

    p = sub.add_parser("lab", help="the built-in lab of network namespaces")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--json", action="store_true")
    p.add_argument("--mgmt-subnet", help="management subnet (default: a free /27 of "
                   "198.51.100.0/24)")
    p.add_argument("--prefix", help="with down: only the lab with this prefix")
    p.add_argument("--all", action="store_true", help="with down: also labs whose run is "
                   "still going (by default only stale labs are removed)")
    p.set_defaults(func=_cmd_lab)

    p = sub.add_parser("profile", help="device profiles: `check PROFILE` says whether a "
                       "profile is ready (schema, templates, the device on the lab, cases)")
    p.add_argument("action", choices=["check"])
    p.add_argument("profile", help="the profile file (YAML)")
    p.add_argument("--testbed", help="testbed file (default: a built-in lab)")
    p.add_argument("--static", action="store_true", help="only what needs no lab: schema, "
                   "templates, files, cases")
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser("bench", help="benchmarks that print their figures")
    p.add_argument("target", choices=["codec", "ha", "tunnel", "lab", "memory", "soak"])
    p.add_argument("--runs", type=int, default=0, help="memory: this many more clean runs at "
                   "random simulated epochs, to find flaky verdicts")
    p.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.set_defaults(func=_cmd_bench)
    return parser


def _cmd_profile(args) -> int:
    from conformance.profile_check import main as check

    return check(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `dsmip4 ... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
