#!/usr/bin/env python3
"""Re-run only the open survivors of the last `make mutation` against the current cases.

A full `make mutation` takes about half an hour; after adding cases, only the mutants still
open can change. This refreshes the copy mutmut runs from (every file it does not mutate:
the suite, the cases, the fixtures), re-runs the open mutants by name, and prints the new
score through tools/mutation_report.py. When a mutated file changed since the full run, mutmut
regenerates the mutants of the functions that changed (only those) and marks them unchecked:
name them with --also (a glob on mutant names, e.g. '*receive_icmpv4__mutmut_*') so they run.

    python tools/mutation_rerun.py [--only SUBSTRING] [--also GLOB]... [--dry-run]
"""

from __future__ import annotations

import argparse
import filecmp
import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mutation_report as report  # noqa: E402

ROOT = report.ROOT
MUTANTS = ROOT / "mutants"
# What mutmut mutates and copies, as pyproject.toml's [tool.mutmut] says (one list, not two).
MUTMUT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
MUTATED = MUTMUT["only_mutate"]
COPIED = (*MUTMUT["source_paths"], *MUTMUT["also_copy"],
          *MUTMUT["pytest_add_cli_args_test_selection"])


def _is_mutated(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, pattern) for pattern in MUTATED)


def refresh_copy() -> None:
    """Copy every changed file mutmut does not mutate into mutants/ (mutmut copies a file
    only when it is missing)."""
    for top in COPIED:
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            rel = str(path.relative_to(ROOT))
            if _is_mutated(rel):
                continue
            target = MUTANTS / rel
            if not target.exists() or not filecmp.cmp(path, target, shallow=False):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


def open_names(only: str | None) -> list[str]:
    return [m.name for m in report.triage(report.load(MUTANTS))
            if m.status not in ("killed", "timeout", "not checked") and m.kind == "open"
            and (only is None or only in m.name)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="re-run only open mutants whose name contains this")
    parser.add_argument("--also", action="append", default=[],
                        help="also run the mutants matching this glob (changed functions)")
    parser.add_argument("--dry-run", action="store_true", help="list them, run nothing")
    args = parser.parse_args(argv)
    if not MUTANTS.is_dir():
        print("mutation_rerun: no mutants/ directory: run `make mutation` first",
              file=sys.stderr)
        return 2
    names = open_names(args.only) + args.also
    print(f"{len(names) - len(args.also)} open mutants to re-run"
          + (f", and those matching {args.also}" if args.also else ""))
    if args.dry_run or not names:
        print("\n".join(names))
        return 0
    refresh_copy()
    mutmut = Path(sys.executable).parent / "mutmut"
    subprocess.run([str(mutmut), "run", "--max-children", str(os.cpu_count() or 2), *names],
                   cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
    return report.main([])


if __name__ == "__main__":
    raise SystemExit(main())
