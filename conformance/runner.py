"""`dsmip4 run`: bring up the built-in lab (unless a testbed is given), run the suite through
pytest with the conformance plugin, write the reports, tear the lab down, print a summary."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTCASES = ROOT / "testcases"
NOTHING_RAN = 4  # exit status when no case was selected or none applies: never a green run


def _unknown_selection(args) -> str | None:
    """Why the selection names something no case has (with the closest known ids), or None."""
    import difflib

    from conformance.catalog import load_catalog
    from conformance.suite.model import load_case_file

    catalog = load_catalog()
    cases = [c for path in sorted(TESTCASES.glob("rfc*.yaml"))
             for c in load_case_file(path, catalog)]
    known = {"--case": {c.id for c in cases} | {c.table for c in cases if c.table},
             "--requirement": {r for c in cases for r in c.requirements},
             "--section": {c.section for c in cases}}
    for flag, values in (("--case", args.case), ("--requirement", args.requirement),
                         ("--section", args.section)):
        for value in values or []:
            if value not in known[flag]:
                close = difflib.get_close_matches(value, sorted(known[flag]), n=3, cutoff=0.5)
                return (f"unknown {flag} {value!r}" + (f"; closest: {', '.join(close)}"
                                                        if close else ""))
    return None


def _check_files(args) -> None:
    """Every file the run is given, read before anything starts: a mistake in one is a line
    naming file, line and key (exit 2), never a traceback from inside the run."""
    from conformance.lab.profile import load_profile
    from conformance.lab.testbed import load_testbed
    from conformance.suite.verdict import ExpectedFailures

    for path in args.dut or []:
        load_profile(path)
    for path in args.testbed or []:
        load_testbed(path)
    ExpectedFailures.load(args.expected_failures)


def run(args) -> int:
    import pytest

    from conformance.lab.netns import LabError
    from conformance.yamlfile import YamlError

    args.role = [r.lower() for r in args.role or []]
    try:
        unknown = _unknown_selection(args)
        _check_files(args)
    except YamlError as exc:
        print(f"dsmip4 run: {exc}", file=sys.stderr)
        return 2
    if unknown:
        print(f"dsmip4 run: {unknown}", file=sys.stderr)
        return 2
    started = time.time()
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)) + f"-{os.getpid()}"
    out = Path(args.out or ROOT / "reports" / run_id).resolve()
    os.environ["DSMIP4_RUN_ID"] = run_id  # one id for the folder and results.json
    # A run started from inside someone else's xdist worker (a test suite, a CI wrapper) is
    # not that worker: its own variables would make this run report as a worker's part.
    for name in [n for n in os.environ if n.startswith("PYTEST_XDIST_")]:
        del os.environ[name]
    out.mkdir(parents=True, exist_ok=True)
    labs = []
    testbeds = list(args.testbed or [])
    workers = getattr(args, "workers", None)
    try:
        if not testbeds and not args.memory:
            from conformance.lab.builtin import BuiltinLab

            # One built-in lab per worker: xdist workers never share a lab.
            for _ in range(workers or 1):
                print("dsmip4 run: bringing up the built-in lab ...", flush=True)
                lab = BuiltinLab().up()
                labs.append(lab)
                testbeds.append(str(lab.testbed_path))
                print(f"dsmip4 run: lab {lab.net.prefix} up in "
                      f"{time.time() - started:.1f} s", flush=True)
        argv = [str(TESTCASES), "-p", "conformance.suite.plugin", "-p", "no:cacheprovider",
                "--rootdir", str(ROOT), "-o", "testpaths=testcases", "--out", str(out),
                "--alluredir", str(out / "allure-results"), "-q", "-rN",
                "--dsmip4-summary", "caller"]
        for tb in testbeds:
            argv += ["--testbed", tb]
        if args.memory:
            argv += ["--memory"]
            if args.memory_epoch is not None:
                argv += ["--memory-epoch", str(args.memory_epoch)]
        for dut in args.dut or []:
            argv += ["--dut", dut]
        for flag, values in (("--role", args.role), ("--requirement", args.requirement),
                             ("--section", args.section), ("--case", args.case)):
            for value in values or []:
                argv += [flag, value]
        if args.expected_failures:
            argv += ["--expected-failures", args.expected_failures]
        if args.strict:
            argv += ["--strict-verdicts"]
        if workers and workers > 1:
            argv += ["-n", str(workers)]
        argv += _extra_pytest_args(getattr(args, "pytest_args", None))
        code = pytest.main(argv)
    except LabError as exc:
        print(f"dsmip4 run: lab error: {exc}", file=sys.stderr)
        return 2
    finally:
        for lab in labs:
            lab.down()
    results = out / "results.json"
    if not results.exists() or not json.loads(results.read_text())["cases"]:
        if code == 5:
            print("dsmip4 run: no case selected: the roles, cases, requirements and sections "
                  "asked for select nothing together", file=sys.stderr)
            return NOTHING_RAN
        print(f"dsmip4 run: no results were written (pytest exit {code})", file=sys.stderr)
        return 2
    data = json.loads(results.read_text())
    if not any(c["verdict"] != "NOT-APPLICABLE" for c in data["cases"]):
        print(f"dsmip4 run: no case applies: the device's PICS excludes all "
              f"{len(data['cases'])} selected case(s); report: {out / 'report.html'}",
              file=sys.stderr)
        return NOTHING_RAN
    summary = data["summary"]
    counts = summary["counts"]
    print()
    print("DSMIPv4 conformance run " + data["run"]["id"]
          + (" (INTERRUPTED: " + str(len(data["run"]["not_run"])) + " case(s) not run)"
             if data["run"].get("interrupted") else ""))
    if data["run"].get("lab_lost"):
        print(f"  LAB LOST: {data['run']['lab_lost']}")
    print("  verdicts: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print("  requirements: " + ", ".join(f"{k} {v}" for k, v in
                                          sorted(summary["requirements"].items())))
    print(f"  time: {time.time() - started:.1f} s in all (lab included), of which protocol "
          f"waits {summary['protocol_wait']:.1f} s")
    print(f"  report: {out / 'report.html'}")
    bad = counts.get("FAIL", 0) + counts.get("ERROR", 0) + counts.get("XPASS", 0)
    if args.strict:
        bad += counts.get("NON-STRICT", 0)
    interrupted = bool(data["run"].get("interrupted"))
    return 1 if bad or interrupted or code not in (0, 5) else 0


def _extra_pytest_args(extra) -> list[str]:
    """What followed `--` on the command line, handed to pytest as it is."""
    extra = list(extra or [])
    return extra[1:] if extra[:1] == ["--"] else extra
