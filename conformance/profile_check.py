"""`dsmip4 profile check PROFILE [--testbed FILE]`: is this profile ready to certify its
device? Checks the file against its schema, renders every command and template with every
parameter defined, then (unless --static) drives the device on the lab through install,
configure, start, health, each state reader and stop, and says per case whether the profile
can run it and, if not, what is missing. Exit 0 only when everything it tried worked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from conformance.lab.profile import Profile, ProfileError, _load_data, load_profile
from conformance.lab.profile_model import ACTIONS
from conformance.schema import closest, dotted
from conformance.yamlfile import YamlError, position

# Values the suite gives every command and template itself (per host).
SUITE_VARIABLES = ("python", "workdir")


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)

    def bad(self, text: str) -> None:
        self.problems.append(text)
        print(f"  FAILED  {text}")

    def good(self, text: str) -> None:
        self.done.append(text)
        print(f"  ok      {text}")


def _templates(profile: Profile) -> list[tuple[tuple, str, tuple]]:
    """(where in the file, text, names defined there besides the parameters) of every
    command and template the suite renders: an action's own arguments are defined in it."""
    out = []
    for key in ("start", "install", "stop", "reset", "health"):
        value = getattr(profile, key)
        if value:
            out.append(((key,), value, ()))
    if profile.config_path:
        out += [(("config", "path"), profile.config_path, ()),
                (("config", "template"), profile.config_template or "", ())]
    out += [(("config", "lines", i), line, ()) for i, line in enumerate(profile.config_lines)]
    for name, reader in profile.state.items():
        out.append((("state", name, "command"), reader.command, ()))
    if profile.log_path:
        out.append((("logs", "path"), profile.log_path, ()))
    for i, copied in enumerate(profile.files):
        out.append((("files", i, "dest"), copied.dest, ()))
    for name, action in profile.actions.items():
        args = ACTIONS[name][0]
        out += [(("actions", name, "params", key), str(value), args)
                for key, value in action.params.items()]
        out += [(("actions", name, part, i), line, args)
                for part in ("commands", "config")
                for i, line in enumerate(getattr(action, part))]
    return out


def check_static(path: Path, report: Report) -> Profile | None:
    """Schema, template parameters and copied files: everything that needs no lab."""
    try:
        profile = load_profile(path)
    except YamlError as exc:
        for line in str(exc).splitlines():
            report.bad(line)
        return None
    report.good(f"{path}: fits schemas/profile.schema.json")
    data, sources = _load_data(path)
    defined = set(profile.template_vars()) | set(SUITE_VARIABLES)
    for where, text, args in _templates(profile):
        template = Template(text)
        unknown = sorted(set(template.get_identifiers()) - defined - set(args))
        if not template.is_valid():
            unknown.append("(a lone $: write $$ for a dollar sign)")
        if unknown:
            line, column = position(data, where)
            lines = text.splitlines()
            if line and len(lines) > 1:  # a block: the line of the template that uses it
                at = next((i for i, ln in enumerate(lines)
                           if re.search(r"\$\{?" + re.escape(unknown[0]) + r"\b", ln)), None)
                if at is not None:
                    line, column = line + 1 + at, None
            report.bad(str(ProfileError(
                sources.get(where[0], path), dotted(where),
                f"uses {', '.join('$' + u for u in unknown)}, which nothing defines", line,
                column, (f"did you mean ${guess}? " if (guess := closest(unknown[0], defined | set(args)))
                         else "") + "define it under parameters: (or pixit:)")))
    if not report.problems:
        report.good("every command and template renders with every parameter defined")
    for i, copied in enumerate(profile.files):
        source = Path(profile.profile_dir) / copied.source
        if not source.is_file():
            line, column = position(data, ("files", i, "source"))
            report.bad(str(ProfileError(sources.get("files", path), f"files[{i}].source",
                                        f"{copied.source!r}: no such file", line, column,
                                        "paths are relative to the profile's folder")))
    for name, reader in profile.state.items():
        if reader.template and not Path(reader.template).is_file():
            line, column = position(data, ("state", name, "template"))
            report.bad(str(ProfileError(sources.get("state", path), f"state.{name}.template",
                                        f"{reader.template}: no such TextFSM template", line,
                                        column, "paths are relative to the profile's folder")))
    if "mn1" not in profile.mobile_nodes and profile.role in ("ha", "mn"):
        line, column = position(data, ("pixit",), key_itself=True)
        report.bad(str(ProfileError(path, "pixit.mobile_nodes.mn1", "missing: the suite needs "
                                    "the home address, SPI and key of the mobile node it "
                                    "plays or peers with", line, column,
                                    "add pixit: {mobile_nodes: {mn1: {home_address: ..., "
                                    "spi: ..., key: ...}}}")))
    return profile


def check_cases(profile: Profile) -> list[tuple[str, list[str], list[str]]]:
    """(case id, what is missing, state tables not observable) for every case of the
    profile's role."""
    from conformance.catalog import load_catalog
    from conformance.lab.profile import reference_profile
    from conformance.runner import TESTCASES
    from conformance.suite.applicability import missing, unobservable
    from conformance.suite.model import load_case_file

    catalog = load_catalog()
    holder = reference_profile("ha") if profile.role == "fa" else profile  # holds the MSAs
    out = []
    for path in sorted(TESTCASES.glob("rfc*.yaml")):
        for case in load_case_file(path, catalog):
            if case.role == profile.role:
                out.append((case.id, missing(case, profile, holder),
                            unobservable(case, profile)))
    return out


def check_on_lab(profile: Profile, testbed_path: str | None, report: Report) -> None:
    """Install, configure, start, health, each state reader, the log, stop: on the lab host
    that plays the profile's `host` role."""
    from conformance.lab.device import device_for
    from conformance.lab.netns import LabError
    from conformance.lab.ssh import SSHHost
    from conformance.lab.testbed import load_testbed

    lab = None
    try:
        if testbed_path is None:
            from conformance.lab.builtin import BuiltinLab

            lab = BuiltinLab().up()
            testbed_path = str(lab.testbed_path)
        testbed = load_testbed(testbed_path)
        try:
            spec = testbed.host_for(profile.host)
        except KeyError:
            report.bad(f"{profile.path}: host: no host of {testbed_path} plays the role "
                       f"{profile.host!r}")
            return
        host = SSHHost(spec, testbed.pixit["ssh_timeout"]).connect()
        device = device_for(profile, host)
        if profile.health_probe is not None and profile.health_probe.registration:
            report.good("health: the registration probe runs in `dsmip4 run` (it needs the "
                        "suite's mobile node); here start waits for the process only")
        steps = [("install", device.install), ("configure", device.configure),
                 ("start and health", device.start)]
        try:
            for name, action in steps:
                try:
                    action()
                except (LabError, OSError) as exc:
                    report.bad(f"{name}: {exc}".splitlines()[0][:300])
                    return
                report.good(name)
            for table in profile.state:
                try:
                    rows = device.state(table)
                except Exception as exc:  # noqa: BLE001 - each reader's failure is a finding
                    report.bad(f"state {table}: {exc}"[:300])
                else:
                    report.good(f"state {table}: {len(rows)} row(s) parsed")
            if profile.log_path:
                report.good(f"log {device.log_path}: {device.log_mark()} bytes")
        finally:
            try:
                device.stop()
                report.good("stop")
            except LabError as exc:
                report.bad(f"stop: {exc}")
            host.close()
    except (LabError, YamlError, OSError) as exc:
        report.bad(f"lab: {exc}")
    finally:
        if lab is not None:
            lab.down()


def main(args) -> int:
    path = Path(args.profile)
    print(f"dsmip4 profile check {path}")
    report = Report()
    profile = check_static(path, report)
    if profile is None:
        print(f"{len(report.problems)} problem(s): the profile cannot be used as it is")
        return 1
    if not args.static and not report.problems:
        check_on_lab(profile, args.testbed, report)
    cases = check_cases(profile)
    runnable = [c for c, why, _ in cases if not why]
    print(f"cases of role {profile.role}: {len(runnable)} of {len(cases)} can run")
    for case_id, why, tables in cases:
        if why:
            print(f"  {case_id}: NOT-APPLICABLE: {'; '.join(why)}")
        elif tables:
            print(f"  {case_id}: runs; not observable on this device: the checks on state "
                  f"table {', '.join(tables)} (state:)")
    if report.problems:
        print(f"{len(report.problems)} problem(s)")
        return 1
    print("profile ready")
    return 0

