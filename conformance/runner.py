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


def run(args) -> int:
    import pytest

    from conformance.lab.netns import LabError

    started = time.time()
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)) + f"-{os.getpid()}"
    out = Path(args.out or ROOT / "reports" / run_id).resolve()
    out.mkdir(parents=True, exist_ok=True)
    lab = None
    testbeds = list(args.testbed or [])
    try:
        if not testbeds:
            from conformance.lab.builtin import BuiltinLab

            print("dsmip4 run: bringing up the built-in lab ...", flush=True)
            lab = BuiltinLab().up()
            testbeds = [str(lab.testbed_path)]
            print(f"dsmip4 run: lab {lab.net.prefix} up in {time.time() - started:.1f} s",
                  flush=True)
        argv = [str(TESTCASES), "-p", "conformance.suite.plugin", "-p", "no:cacheprovider",
                "--rootdir", str(ROOT), "-o", "testpaths=testcases", "--out", str(out),
                "--alluredir", str(out / "allure-results"), "-q", "-rN"]
        for tb in testbeds:
            argv += ["--testbed", tb]
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
        code = pytest.main(argv)
    except LabError as exc:
        print(f"dsmip4 run: lab error: {exc}", file=sys.stderr)
        return 2
    finally:
        if lab is not None:
            lab.down()
    results = out / "results.json"
    if not results.exists():
        print(f"dsmip4 run: no results were written (pytest exit {code})", file=sys.stderr)
        return 2
    data = json.loads(results.read_text())
    summary = data["summary"]
    counts = summary["counts"]
    print()
    print("DSMIPv4 conformance run " + data["run"]["id"])
    print("  verdicts: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print("  requirements: " + ", ".join(f"{k} {v}" for k, v in
                                          sorted(summary["requirements"].items())))
    print(f"  time: {time.time() - started:.1f} s in all (lab included), of which protocol "
          f"waits {summary['protocol_wait']:.1f} s")
    print(f"  report: {out / 'report.html'}")
    bad = counts.get("FAIL", 0) + counts.get("ERROR", 0) + counts.get("XPASS", 0)
    if args.strict:
        bad += counts.get("NON-STRICT", 0)
    return 1 if bad or code not in (0, 5) else 0
