"""`dsmip4 selftest`: prove that the suite's cases can fail.

Runs in memory first (suite.inmemory: the reference engines on a simulated clock), then on a
lab for what only real hosts show (the socket and TUN adapter's faults, the clean reference on
real kernels). Each phase runs the suite against the clean reference implementation (every
case must be PASS or NOT-APPLICABLE), then the cases of optional features (PICS) the default
reference does not claim against the reference's configuration variants that claim them
(fixtures/profiles/variants/), so that every case passes against some clean configuration.
Then, for each named fault of the reference HA, MN and FA, it runs the cases that check the
requirement the fault breaks against the reference (or the variant claiming that requirement's
PICS item) with that fault injected. A fault is caught when a case FAILs (or is NON-STRICT) with
a failing check mapped to the broken requirement. Exit 0 only when every fault is caught, the
clean runs have no FAIL and every case ran somewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _faults() -> list[tuple[str, str, str]]:
    from conformance.nodes.faults import FA_FAULTS
    from conformance.nodes.faults import HA_FAULTS
    from conformance.nodes.faults import MN_FAULTS

    out = []
    for table in (HA_FAULTS, MN_FAULTS, FA_FAULTS):
        for fault, requirements in table.items():
            out.append((fault, fault.split(".")[0], list(requirements)))
    return out


def _case_index():
    """((requirement, role) -> case ids, case id -> (role, PICS items))."""
    sys.path.insert(0, str(ROOT / "tools"))
    import check_coverage

    from conformance.catalog import load_catalog

    catalog = load_catalog()
    cases = check_coverage.load_cases(catalog)
    return (check_coverage.covered_pairs(cases),
            {c.id: (c.role, set(c.pics)) for c in cases})


def _profiles():
    """role -> [default reference profile, then its variants]."""
    from conformance.lab.profile import reference_configurations

    return reference_configurations()


def _profile_for(role: str, pics: set[str], profiles) -> object | None:
    """The first reference configuration of `role` that claims every item of `pics`."""
    from conformance.lab.profile import claiming

    return claiming(profiles, role, pics)


def _run(testbed: str, out: Path, cases: list[str], dut: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "conformance", "run", "--testbed", testbed, "--out", str(out)]
    if dut:
        cmd += ["--dut", dut]
    for case in cases:
        cmd += ["--case", case]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    path = out / "results.json"
    if not path.exists():
        raise RuntimeError(f"run produced no results: {proc.stdout[-800:]} {proc.stderr[-800:]}")
    return json.loads(path.read_text())


def _faulty_profile(base, fault: str, folder: Path) -> str:
    data = {"extends": str(Path(base.path).resolve()),
            "profile": {"name": f"{base.name}+{fault}"},
            "parameters": {"faults": f"[{fault}]"}}
    path = folder / f"{fault}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _caught(results: dict, requirements: list[str]) -> list[str]:
    """Cases that failed a check mapped to one of the requirements the fault breaks."""
    caught = []
    for case in results["cases"]:
        if case["verdict"] not in ("FAIL", "NON-STRICT"):
            continue
        # ok None is a check that could not be judged: never a catch.
        if any(c["ok"] is False and set(requirements) & set(c["requirements"])
               for c in case["checks"]):
            caught.append(f"{case['id']} {case['verdict']}")
    return caught


def _configuration_for(role: str, mapped: set[str], case_info, profiles):
    """The first reference configuration of `role` (default, then variants) that claims the
    PICS items of some of the `mapped` cases, with those cases."""
    for profile in profiles[role]:
        runnable = sorted(c for c in mapped if profile.claims_all(case_info[c][1]))
        if runnable:
            return profile, runnable
    return None, []


def _clean_variants(runner, case_info, profiles) -> bool:
    """Run each case the default reference leaves NOT-APPLICABLE against the first variant
    that claims its PICS items; it must PASS. A case no configuration claims is reported."""
    ok = True
    by_variant: dict[str, tuple] = {}  # profile path -> (profile, cases)
    for case, (role, pics) in sorted(case_info.items()):
        if profiles[role][0].claims_all(pics):
            continue
        variant = _profile_for(role, pics, profiles)
        if variant is None:
            print(f"  {case}: no reference configuration claims {sorted(pics)}", flush=True)
            ok = False
            continue
        by_variant.setdefault(variant.path, (variant, []))[1].append(case)
    for path, (variant, cases) in by_variant.items():
        results = runner(f"clean-{variant.name}", cases, path)
        bad = {c["id"]: c["verdict"] for c in results["cases"] if c["verdict"] != "PASS"}
        print(f"  clean {variant.name}: {len(cases) - len(bad)}/{len(cases)} PASS"
              + (f"; NOT CLEAN: {bad}" if bad else ""), flush=True)
        ok &= not bad
    return ok


def _memory_runner():
    """Runs cases in this process against the reference in memory (suite.inmemory)."""
    from collections import Counter

    from conformance.lab.profile import load_profile
    from conformance.suite.inmemory import load_cases, run_in_memory

    every = {c.id: c for c in load_cases()}

    def runner(name: str, cases: list[str], dut: str | None = None) -> dict:
        profiles = None
        if dut:
            profile = load_profile(dut)
            profiles = {profile.role: profile}
        chosen = [every[c] for c in cases] if cases else \
            [c for c in every.values() if profiles is None or c.role in profiles]
        records = run_in_memory(chosen, profiles)
        return {"cases": records,
                "summary": {"counts": dict(Counter(r["verdict"] for r in records))}}
    return runner


def _lab_runner(testbed: str, work: Path):
    def runner(name: str, cases: list[str], dut: str | None = None) -> dict:
        return _run(testbed, work / name, cases, dut)
    return runner


def _clean(runner, case_info, profiles) -> bool:
    clean = runner("clean", [])
    bad = [c["id"] for c in clean["cases"] if c["verdict"] not in ("PASS", "NOT-APPLICABLE")]
    counts = clean["summary"]["counts"]
    print(f"  clean reference: {', '.join(f'{k} {v}' for k, v in counts.items())}"
          + (f"; NOT CLEAN: {bad}" if bad else ""), flush=True)
    return not bad and _clean_variants(runner, case_info, profiles)


def _faults_caught(runner, faults, pairs, case_info, profiles, work: Path, rows) -> bool:
    ok = True
    for fault, role, requirements in faults:
        mapped = {c for r in requirements for c in pairs.get((r, role.upper()), [])}
        base, cases = _configuration_for(role, mapped, case_info, profiles)
        label = requirements[0] + (f" +{len(requirements) - 1}" if len(requirements) > 1
                                   else "")
        if not cases:
            rows.append((fault, requirements, [], "NO CASE"))
            ok = False
            print(f"  {fault:<34} {label:<22} no case checks it"
                  + (f" (no reference configuration claims the PICS of {sorted(mapped)})"
                     if mapped else ""), flush=True)
            continue
        profile = _faulty_profile(base, fault, work)
        results = runner(fault, cases, profile)
        caught = _caught(results, requirements)
        status = "caught" if caught else "MISSED"
        ok &= bool(caught)
        rows.append((fault, requirements, caught, status))
        verdicts = {c["id"]: c["verdict"] for c in results["cases"]}
        print(f"  {fault:<34} {label:<22} {status}: "
              f"{', '.join(caught) or 'verdicts ' + str(verdicts)}", flush=True)
    return ok


def run(args) -> int:
    from conformance.adapters.memory import NOT_MODELLED

    started = time.time()
    pairs, case_info = _case_index()
    profiles = _profiles()
    faults = _faults()
    if args.fault:
        faults = [f for f in faults if f[0] in args.fault]
    work = Path(args.out or tempfile.mkdtemp(prefix="dsmip4-selftest-"))
    work.mkdir(parents=True, exist_ok=True)
    ok = True
    rows: list = []
    # The engines' faults in memory (seconds); what lives in the socket and TUN adapter, and
    # the clean reference on real hosts, on the lab.
    print("in memory (the reference engines, simulated clock):", flush=True)
    memory = _memory_runner()
    if not args.skip_clean:
        ok &= _clean(memory, case_info, profiles)
    ok &= _faults_caught(memory, [f for f in faults if f[0] not in NOT_MODELLED], pairs,
                         case_info, profiles, work, rows)
    print(f"  ({time.time() - started:.0f} s)", flush=True)
    on_lab = [f for f in faults if f[0] in NOT_MODELLED]
    if not args.memory_only and (on_lab or not args.skip_clean):
        from conformance.lab.builtin import BuiltinLab

        lab = None
        testbed = args.testbed
        try:
            if not testbed:
                lab = BuiltinLab().up()
                testbed = str(lab.testbed_path)
            print(f"on the lab ({testbed}):", flush=True)
            runner = _lab_runner(testbed, work)
            if not args.skip_clean:
                ok &= _clean(runner, case_info, profiles)
            ok &= _faults_caught(runner, on_lab, pairs, case_info, profiles, work, rows)
        finally:
            if lab is not None:
                lab.down()
    matrix = [{"fault": f, "requirements": r, "caught_by": c, "status": s}
              for f, r, c, s in rows]
    (work / "selftest.json").write_text(json.dumps(matrix, indent=2))
    caught = sum(1 for row in rows if row[3] == "caught")
    print(f"\nselftest: {caught}/{len(rows)} faults caught by a case mapped to the broken "
          f"requirement; {time.time() - started:.0f} s; matrix in {work / 'selftest.json'}")
    return 0 if ok else 1
