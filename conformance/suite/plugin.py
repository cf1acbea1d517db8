"""pytest plugin: YAML test cases as pytest items, run against a device under test on a lab.

    pytest testcases/ -p conformance.suite.plugin --testbed TESTBED --dut PROFILE [--out DIR]
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import traceback
from pathlib import Path

import pytest

from conformance.catalog import load_catalog
from conformance.errors import Inconclusive, LabError, SuiteError
from conformance.lab.device import DeviceCrashed
from conformance.lab.netns import lab_withdrawn
from conformance.lab.profile import load_profile, reference_profile
from conformance.lab.pcapng import NotAPcap, packet_count, to_pcapng
from conformance.lab.testbed import load_testbed
from conformance.suite.applicability import missing
from conformance.suite.model import CaseFileError, load_case_file
from conformance.suite.record import CaseRecord
from conformance.suite.session import Session
from conformance.suite.steps import CaseRun, run_case
from conformance.suite.verdict import ExpectedFailures, Verdict, judge, signature

STATE = pytest.StashKey()
SEVERITY = {"MUST": "critical", "MUST NOT": "critical", "DEFINITION": "critical",
            "SHOULD": "normal", "SHOULD NOT": "normal", "RECOMMENDED": "normal",
            "MAY": "minor", "OPTIONAL": "minor"}


def pytest_addoption(parser):
    g = parser.getgroup("dsmip4", "DSMIPv4 conformance")
    g.addoption("--testbed", action="append", default=[], help="testbed file (one per xdist "
                "worker when given several)")
    g.addoption("--memory", action="store_true", dest="dsmip4_memory",
                help="run against the reference nodes in memory on a simulated clock (no "
                "lab; reference profiles only)")
    g.addoption("--memory-epoch", type=float, default=None, dest="dsmip4_epoch",
                help="with --memory: the simulated clock's start (to replay a run)")
    g.addoption("--dut", action="append", default=[], help="device profile under test "
                "(one per role); default: the reference HA, MN and FA")
    g.addoption("--role", action="append", default=[], help="only cases for this role")
    g.addoption("--requirement", action="append", default=[], help="only cases checking this "
                "requirement id")
    g.addoption("--section", action="append", default=[], help="only cases of this section")
    g.addoption("--case", action="append", default=[], help="only this case id")
    g.addoption("--out", default=None, help="report folder (default reports/<run-id>)")
    g.addoption("--expected-failures", default=None, help="per-device expected-failure file")
    g.addoption("--strict-verdicts", action="store_true", dest="dsmip4_strict",
                help="NON-STRICT verdicts fail the run")
    g.addoption("--catalog", default=None, help="requirement catalog")
    g.addoption("--dsmip4-summary", choices=("pytest", "caller"), default="pytest",
                dest="dsmip4_summary", help="who prints the run summary: this plugin (plain "
                "pytest) or the caller (dsmip4 run prints its own, once)")


class RunState:
    def __init__(self, config):
        opt = config.option
        self.catalog = load_catalog(opt.catalog)
        self.started = time.time()
        # xdist workers inherit the controller's run id, so they all report into one folder.
        self.run_id = os.environ.setdefault(
            "DSMIP4_RUN_ID", time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.started))
            + f"-{os.getpid()}")
        self.out = Path(opt.out or Path("reports") / self.run_id).resolve()
        self.worker = os.environ.get("PYTEST_XDIST_WORKER")
        testbeds = opt.testbed
        worker = self.worker or "gw0"
        index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
        self.testbed_path = testbeds[index % len(testbeds)] if testbeds else None
        self.testbed = load_testbed(self.testbed_path) if self.testbed_path else None
        self.memory = opt.dsmip4_memory
        self.memory_epoch = getattr(opt, "dsmip4_epoch", None)
        if self.memory:
            from conformance.adapters.memory import memory_testbed

            self.testbed = memory_testbed()
        self.profiles = {}
        for path in opt.dut:
            profile = load_profile(path)
            self.profiles[profile.role] = profile
        self.explicit_duts = bool(opt.dut)
        self.expected = ExpectedFailures.load(opt.expected_failures)
        self.strict = opt.dsmip4_strict
        self.session: Session | None = None
        self.session_error: str | None = None
        self.cases: list[dict] = []
        self.seeds: dict[str, int] = {}
        self.selected: list[str] = []  # case ids, to list what an interrupted run left undone
        self.interrupted = False
        self.terminated: str | None = None  # set by SIGTERM: the lab is being taken away
        self.sigint = False  # set by Ctrl-C (SIGINT), even if its KeyboardInterrupt is lost
        self.lab_lost_reason: str | None = None
        self.builtin_lab = None  # brought up by this session when no --testbed was given

    def lab_lost(self) -> str | None:
        """Why the lab can no longer be used, once it is gone or going (None while usable):
        the remaining cases end as ERROR saying so, and the report is still written."""
        if self.lab_lost_reason is None:
            builtin = (self.testbed.builtin or {}) if self.testbed and not self.memory else {}
            state_file = builtin.get("state_file")
            if self.terminated:
                self.lab_lost_reason = self.terminated
            elif state_file and lab_withdrawn(Path(state_file)):
                self.lab_lost_reason = (f"the lab {builtin.get('prefix')} was removed while "
                                        f"this run was using it ({state_file} is gone or "
                                        f"says it is going down)")
        return self.lab_lost_reason

    def lab(self) -> Session:
        if self.session is None:
            if self.session_error:
                raise LabError(self.session_error)
            try:
                if self.memory:
                    from conformance.adapters.memory import MemorySession

                    self.session = MemorySession(self.testbed, self.profiles, self.out)
                    self.session.start_time = self.memory_epoch
                else:
                    self.session = Session(self.testbed, self.profiles, self.out)
                self.session.start()
            except Exception as exc:  # the lab is unusable: every case is an ERROR
                self.session_error = f"lab session failed to start: {exc}"
                self.session = None
                raise LabError(self.session_error) from exc
        return self.session

    def roles(self) -> set[str]:
        return set(self.profiles) if self.explicit_duts else {"ha", "mn", "fa"}


_CONFIG: dict = {}  # the running pytest config, for the hooks that are not given it


def pytest_configure(config):
    _CONFIG["config"] = config
    for marker in ("role", "section", "level", "requirement", "pics"):
        config.addinivalue_line("markers", f"{marker}(value): DSMIPv4 conformance {marker}")
    _one_lab_per_worker(config)
    config.stash[STATE] = state = RunState(config)
    _on_sigterm_finish_as_error(state)


def _on_sigterm_finish_as_error(state: RunState) -> None:
    """`dsmip4 lab down --all` (or a cancelled CI job) sends SIGTERM to the lab's owner: the
    run ends its remaining cases as ERROR, writes its report and takes its lab down."""
    if state.worker or threading.current_thread() is not threading.main_thread():
        return

    def on_sigterm(signum, frame):
        state.terminated = (f"the run received SIGTERM (pid {os.getpid()}): its lab is being "
                            f"taken down, e.g. by `dsmip4 lab down --all`, or the job was "
                            f"cancelled")
    state.previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm)

    def on_sigint(signum, frame):
        state.sigint = True
        raise KeyboardInterrupt
    state.previous_sigint = signal.signal(signal.SIGINT, on_sigint)


def pytest_unconfigure(config):
    state = config.stash.get(STATE, None)
    lab = getattr(state, "builtin_lab", None)
    if lab is not None:  # the built-in lab this session brought up itself
        state.builtin_lab = None
        lab.down()
    previous = getattr(state, "previous_sigterm", None)
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
    previous = getattr(state, "previous_sigint", None)
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def _one_lab_per_worker(config) -> None:
    """Two xdist workers on one lab would start, stop and capture over each other's devices:
    refuse fewer testbeds than workers (the in-memory lab is per process, so it may share)."""
    workers = getattr(config.option, "numprocesses", None)
    testbeds = config.option.testbed
    if os.environ.get("PYTEST_XDIST_WORKER") or config.option.dsmip4_memory or not testbeds:
        return
    if isinstance(workers, int) and workers > len(testbeds):
        raise pytest.UsageError(
            f"-n {workers} with {len(testbeds)} --testbed: every xdist worker needs a lab of its "
            f"own (give --testbed once per worker, or use -n {len(testbeds)})")


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".yaml" and file_path.name.startswith("rfc") and \
            file_path.parent.name == "testcases":
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self):
        state = self.config.stash[STATE]
        try:
            cases = load_case_file(self.path, state.catalog)
        except CaseFileError as exc:
            raise self.CollectError(str(exc)) from None
        for case in cases:
            item = CaseItem.from_parent(self, name=case.id, case=case)
            # Markers carry their value both ways, so that -m "role(value='ha')" (pytest's
            # keyword matching) selects as well as reading marker.args does.
            item.add_marker(pytest.mark.role(case.role, value=case.role))
            item.add_marker(pytest.mark.section(case.section, value=str(case.section)))
            for req in case.requirements:
                level = state.catalog[req].level
                item.add_marker(pytest.mark.requirement(req, value=req))
                item.add_marker(pytest.mark.level(level, value=level))
            for feature in case.pics:
                item.add_marker(pytest.mark.pics(feature, value=feature))
            # -k matches the title, the requirement ids and the role, not only the id.
            item.extra_keyword_matches.update({case.title, case.role, *case.requirements,
                                               *case.pics})
            yield item

    class CollectError(Exception):
        pass


def pytest_collection_modifyitems(session, config, items):
    state = config.stash[STATE]
    opt = config.option
    keep, drop = [], []
    for item in items:
        case = getattr(item, "case", None)
        if case is None:
            keep.append(item)
            continue
        ok = case.role in state.roles()
        ok &= not opt.role or case.role in opt.role
        ok &= not opt.requirement or bool(set(opt.requirement) & set(case.requirements))
        ok &= not opt.section or case.section in opt.section
        ok &= not opt.case or case.selected_by(opt.case)
        (keep if ok else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    if state.testbed is None and any(isinstance(i, CaseItem) for i in keep):
        # As `dsmip4 run` does: the built-in lab, brought up for this session and taken down
        # at its end. Skipping every case instead would be a green run that judged nothing.
        _bring_up_builtin_lab(state)
    state.selected = [i.case.id for i in keep if isinstance(i, CaseItem)]
    # Cases of one role together: the lab switches the device under test once per role.
    order = {"ha": 0, "mn": 1, "fa": 2}
    keep.sort(key=lambda i: order.get(getattr(getattr(i, "case", None), "role", ""), 9))
    items[:] = keep


def _bring_up_builtin_lab(state) -> None:
    if state.worker:
        raise pytest.UsageError("no --testbed given to this xdist worker: give one --testbed "
                                "per worker (or run without -n to use the built-in lab)")
    from conformance.lab.builtin import BuiltinLab
    from conformance.lab.netns import LabError as NetnsLabError

    try:
        lab = BuiltinLab().up()
    except (NetnsLabError, LabError, OSError) as exc:
        raise pytest.UsageError(f"no --testbed given and the built-in lab cannot come up "
                                f"here: {exc} (give --testbed FILE, or --memory)") from None
    state.builtin_lab = lab
    state.testbed_path = str(lab.testbed_path)
    state.testbed = load_testbed(state.testbed_path)


class CaseFailed(AssertionError):
    """A device's verdict that fails the run (FAIL, XPASS, NON-STRICT under --strict): an
    assertion, so pytest and Allure call it failed, not broken."""


class CaseError(Exception):
    """An ERROR: the suite or the lab could not judge; Allure calls it broken."""


class _ChecksFailed(AssertionError):
    """Marks an Allure step failed when one of its checks failed (caught at the step)."""


class _NotJudged(Exception):
    """Marks an Allure check step broken when the check could not be judged."""


class CaseItem(pytest.Item):
    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.record: CaseRecord | None = None

    def reportinfo(self):
        return self.path, (self.case.line or 1) - 1, f"{self.case.id}: {self.case.title}"

    def runtest(self):
        state = self.config.stash[STATE]
        if state.sigint:
            # A Ctrl-C whose KeyboardInterrupt was swallowed (it can land in a finaliser or
            # a library's cleanup): the run still stops here, reported as interrupted.
            raise KeyboardInterrupt
        if state.testbed is None:
            pytest.skip("no --testbed given: nothing to run the case against")
        self.record = record = execute(state, self.case)
        state.cases.append(record.to_dict())
        verdict = Verdict(record.verdict)
        message = record.message
        if verdict in (Verdict.PASS, Verdict.XFAIL) or (verdict == Verdict.NON_STRICT
                                                        and not state.strict):
            if verdict == Verdict.XFAIL:
                pytest.xfail(message)
            return
        if verdict in (Verdict.NOT_APPLICABLE, Verdict.INCONCLUSIVE):
            pytest.skip(f"{verdict.value}: {message}")
        if verdict == Verdict.ERROR:
            raise CaseError(f"{verdict.value}: {message}")
        raise CaseFailed(f"{verdict.value}: {message}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, (CaseFailed, CaseError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def _allure():
    try:
        import allure

        return allure
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return None


def execute(state: RunState, case) -> CaseRecord:
    """Run one case and return its record for the reports."""
    allure = _allure()
    catalog = state.catalog
    started = time.time()
    profile = state.profiles.get(case.role)
    record = CaseRecord(case.id, case.title, os.path.relpath(case.file), case.role,
                        case.section, case.requirements, case.purpose, case.pics, case.seed,
                        [s.title for s in case.steps], _rerun(state, case))
    record.testbed = state.testbed.name if state.testbed is not None else None
    if allure:
        allure.dynamic.title(f"{case.id}: {case.title}")
        allure.dynamic.epic("RFC 5454")
        allure.dynamic.feature(f"§{case.section} ({case.role.upper()})")
        for req in case.requirements:
            allure.dynamic.story(req)
            # One link per requirement: Allure merges links with the same URL, and several
            # requirements share their RFC section's.
            allure.dynamic.link(_requirement_url(catalog[req].url, req), name=req)
        level = catalog[case.requirements[0]].level
        allure.dynamic.severity(SEVERITY.get(level, "normal"))
        allure.dynamic.description(case.purpose)
        allure.dynamic.label("dsmip4_case", case.id)
    run = None
    evidence_dir = state.out / "evidence" / case.id
    evidence_dir.mkdir(parents=True, exist_ok=True)
    try:
        dut_profile = profile or reference_profile(case.role)
        holder = dut_profile if case.role == "mn" else \
            state.profiles.get("ha") or reference_profile("ha")
        lacking = missing(case, dut_profile, holder)
        if lacking:
            record.conclude(Verdict.NOT_APPLICABLE.value, "; ".join(lacking))
            return record
        lost = state.lab_lost()
        if lost:
            record.conclude(Verdict.ERROR.value, f"not run: {lost}")
            return record
        session = state.lab()
        dut = session.ready_for(case.role)
        run = CaseRun(session, case)
        if session.restarted is not None:
            record.evidence["restarted_before_case"] = session.restarted
            run.note("suite", f"DUT ({case.role.upper()})", "the device had died since the "
                     "last case: restarted before this one")
        if dut is not None:
            record.evidence["bindings_before"] = _state(dut)
        captures = _captures_start(session, case)

        step_marks = []

        @contextlib.contextmanager
        def on_step(step):
            step_marks.append((session.clock.time(), step.index, step.title))
            if not allure:
                yield
                return
            before = len(run.results)
            try:
                with allure.step(f"{step.index + 1}. {step.title}"):
                    yield
                    _allure_checks(allure, run.results[before:])
            except _ChecksFailed:
                pass  # the step is marked failed; the case goes on to its verdict
        try:
            try:
                run_case(run, on_step)
            except Inconclusive as exc:
                if not any(r.ok is False for r in run.results):
                    raise
                # The device already failed a check: that verdict stands; the rest is noted.
                run.note("suite", "suite", f"not judged after that: {exc}")
        finally:
            record.evidence.update(_captures_stop(session, captures, evidence_dir, case,
                                                  state.run_id, step_marks))
            dut = session.dut(case.role)
            if dut is not None:
                record.evidence["bindings_after"] = _state(dut)
                log = dut.log_since(run.vars.get("_log_mark", 0))
                if log:
                    evidence_dir.mkdir(parents=True, exist_ok=True)
                    (evidence_dir / "device.log").write_text(log)
                    record.evidence["device_log"] = str(evidence_dir / "device.log")
        dut = session.dut(case.role)
        crashed = None
        if dut is not None:
            try:
                dut.check_alive()
            except DeviceCrashed as exc:
                # Died during the case. Once the device stopped doing what the case checked
                # (a failed check on the wire), the crash is the evidence of that FAIL;
                # otherwise nothing ties it to the case: an ERROR with its last log lines.
                if not any(r.ok is False for r in run.results):
                    raise
                crashed = exc
                record.evidence["device_crash"] = "\n".join(exc.last_log[-10:])
        if not run.results:
            raise SuiteError("the case recorded no check: it judged nothing",
                             file=case.file, case=case.id, line=case.line)
        verdict = judge(run.results, catalog, case.requirements)
        failed = [r for r in run.results if r.ok is not True and r.observable]
        record.message = _failure_message(run, failed) if failed else \
            f"{sum(r.observable for r in run.results)} check(s) passed"
        hidden = sorted({r.actual for r in run.results if not r.observable})
        if verdict == Verdict.NOT_APPLICABLE:
            record.message = "what this case checks is " + "; ".join(hidden)
        elif hidden:
            record.message += "; some checks were " + "; ".join(hidden)
        if crashed is not None:
            record.message += f"; the device {crashed} (last log lines in the evidence)"
        sig = signature(run.results)
        record.signature = sig
        record.verdict = state.expected.apply(case.id, verdict, sig).value
    except Inconclusive as exc:
        record.conclude(Verdict.INCONCLUSIVE.value, str(exc))
    except DeviceCrashed as exc:
        record.conclude(Verdict.ERROR.value, f"{exc}; last log lines:\n"
                      + "\n".join(exc.last_log[-10:]))
    except (LabError, SuiteError, OSError) as exc:
        lost = state.lab_lost()
        record.conclude(Verdict.ERROR.value, f"{type(exc).__name__}: {exc}"
                        + (f" ({lost})" if lost else ""))
    except Exception as exc:  # a bug of the suite: ERROR with the traceback, never a FAIL
        record.conclude(Verdict.ERROR.value, "suite error: " +
                      "".join(traceback.format_exception(exc))[-1500:])
    finally:
        record.duration = round(time.time() - started, 3)
        if run is not None:
            record.checks = [r.to_dict() for r in run.results]
            record.trace = [t.to_dict() for t in run.trace]
            record.waited = round(run.waited, 3)
        _save_case_evidence(record, evidence_dir, allure)
    return record


def _requirement_url(url: str, req: str) -> str:
    base, hash_, fragment = url.partition("#")
    return f"{base}{'&' if '?' in base else '?'}requirement={req}{hash_}{fragment}"


def _allure_checks(allure, results) -> None:
    """One Allure sub-step per check, failed or broken as the check came out; the enclosing
    step fails when any did."""
    failed = False
    for r in results:
        what = f"{r.name} [{', '.join(r.requirements)}]: expected {r.expected}; got {r.actual}"
        try:
            with allure.step(what[:300]):
                if r.ok is False and r.observable:
                    raise _ChecksFailed(what)
                if r.ok is None:
                    raise _NotJudged(what)
        except _ChecksFailed:
            failed = True
        except _NotJudged:
            pass
    if failed:
        raise _ChecksFailed("a check of this step failed")


def _rerun(state: RunState, case) -> str:
    parts = ["dsmip4", "run", "--case", case.id] + (["--memory"] if state.memory else [])
    if state.testbed_path and not (state.testbed and state.testbed.builtin):
        parts += ["--testbed", state.testbed_path]
    if case.role in state.profiles and state.explicit_duts:
        parts += ["--dut", state.profiles[case.role].path]
    return " ".join(parts)


def _state(dut):
    try:
        table = "bindings" if "bindings" in dut.profile.state else next(iter(dut.profile.state),
                                                                         None)
        return dut.state(table) if table else None
    except Exception as exc:  # evidence only: a failure to read it is noted, not fatal
        return {"error": str(exc)}


def _captures_start(session, case) -> dict:
    captures = {}
    for link, (host, iface) in session.watch.items():
        captures[link] = (host, session.agent(host).capture_start(iface,
                                                                  f"{case.id}-{link}"))
    return captures


def _captures_stop(session, captures, evidence_dir: Path, case=None, run_id="",
                   step_marks=()) -> dict:
    """Each link's capture as evidence: pcapng whose section comment names the run, the case
    and the link, each packet commented with the step it was captured in (a capture that is
    not a classic pcap stays as it came). A link that saw nothing leaves no file: it is
    listed under `silent_links`."""
    evidence_dir.mkdir(parents=True, exist_ok=True)
    out, silent = {}, []
    marks = sorted(step_marks)

    def step_of(seconds: float) -> str | None:
        started = [(at, index, title) for at, index, title in marks if at <= seconds + 0.0005]
        if not started:
            return None
        latest = started[-1][0]
        # Steps that began at the same instant (a simulated clock that did not move) cannot
        # be told apart by time: the comment says so instead of guessing.
        same = [m for m in started if latest - m[0] <= 0.0005]
        if len(same) == 1:
            return f"step {same[0][1] + 1}: {same[0][2]}"
        return f"steps {same[0][1] + 1}-{same[-1][1] + 1} (begun at the same instant)"
    for link, (host, capture) in captures.items():
        local = evidence_dir / f"{link}.pcap"
        session.agent(host).capture_stop(capture, str(local))
        iface = session.watch.get(link, (host, ""))[1]
        comment = (f"dsmip4-conformance run {run_id}: case {case.id} ({case.title}), "
                   f"link {link}, captured on {host} {iface}") if case else f"link {link}"
        try:
            data = local.read_bytes()
            if packet_count(data) == 0:
                local.unlink()
                silent.append(link)
                continue
            converted = to_pcapng(data, comment, link, f"{host} {iface}",
                                  packet_comment=step_of)
        except (NotAPcap, OSError):
            out[f"pcap_{link}"] = str(local)
            continue
        target = local.with_suffix(".pcapng")
        target.write_bytes(converted)
        local.unlink()
        out[f"pcap_{link}"] = str(target)
    if silent:
        out["silent_links"] = silent
    return out


def _failure_message(run, failed) -> str:
    lines = []
    for r in failed:
        what = f"not judged: {r.actual}" if r.ok is None else \
            f"expected {r.expected}; got {r.actual}"
        lines.append(f"step {(r.step or 0) + 1} {r.name} [{', '.join(r.requirements)}]: "
                     f"{what}" + (f" ({r.detail})" if r.detail else ""))
    for name, saved in run.vars.items():
        msg = saved.get("message") if isinstance(saved, dict) else None
        if hasattr(msg, "extensions") and saved.get("payload"):
            from conformance.codec import message_to_dict

            lines.append(f"{name} as received: {json.dumps(message_to_dict(msg))} | hex "
                         f"{saved['payload'].hex()}")
    return "\n".join(lines)


def _save_case_evidence(record, evidence_dir: Path, allure) -> None:
    evidence_dir.mkdir(parents=True, exist_ok=True)
    path = evidence_dir / "case.json"
    record.evidence["record"] = str(path)
    path.write_text(json.dumps(record.to_dict(), indent=2, default=str))
    if allure:
        for key, value in record.evidence.items():
            if isinstance(value, str) and key.startswith("pcap_") and Path(value).exists():
                allure.attach.file(value, name=key[5:] + Path(value).suffix,
                                   attachment_type="application/vnd.tcpdump.pcap",
                                   extension="pcap")
            elif key == "device_log":
                allure.attach.file(value, name="device log",
                                   attachment_type=allure.attachment_type.TEXT)
        allure.attach(json.dumps(record.checks, indent=2), name="checks and decoded "
                      "messages", attachment_type=allure.attachment_type.JSON)
        allure.attach(record.message, name="verdict " + str(record.verdict),
                      attachment_type=allure.attachment_type.TEXT)


def pytest_sessionfinish(session, exitstatus):
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    state.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or state.sigint
    if state.session is not None:
        state.session.close()
    if state.worker:
        # An xdist worker hands its cases to the controller, which writes the one report.
        if state.cases:
            state.out.mkdir(parents=True, exist_ok=True)
            (state.out / f"partial-{state.worker}.json").write_text(
                json.dumps(state.cases, default=str))
        return
    for partial in sorted(state.out.glob("partial-gw*.json")) if state.out.exists() else []:
        state.cases.extend(json.loads(partial.read_text()))
        partial.unlink()
    if state.testbed is None and not state.cases:
        return
    from conformance.reports.writer import write_reports

    summary = write_reports(state, getattr(session.config.option, "allure_report_dir", None))
    xpass = summary["counts"].get("XPASS", 0)
    if xpass and session.exitstatus == 0:
        session.exitstatus = 1  # an unexpected pass: the expected-failure file must be fixed


@pytest.hookimpl(hookwrapper=True)
def pytest_report_teststatus(report, config):
    """No progress mark for a case: its line (below) says its verdict."""
    outcome = yield
    result = outcome.get_result()
    if getattr(report, "dsmip4_record", None) is not None and result:
        category, _, word = result
        outcome.force_result((category, "", word))


def pytest_runtest_logreport(report):
    """One progress line per case, with its verdict, as the run goes: on the terminal
    (stdout), each on its own line, printed once (by the xdist controller, not its workers)."""
    if report.when != "call" and not (report.when == "setup" and report.skipped):
        return
    item_record = getattr(report, "dsmip4_record", None)
    config = _CONFIG.get("config")
    if item_record is None or config is None or hasattr(config, "workerinput"):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    reporter.write_line(f"  {item_record['id']:<22} {item_record['verdict']:<15} "
                        f"{item_record.get('duration', 0):5.1f} s  {item_record['title']}",
                        flush=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if isinstance(item, CaseItem) and item.record is not None and call.when == "call":
        report.dsmip4_record = item.record.to_dict()
        report.user_properties.append(("verdict", item.record.verdict))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash.get(STATE, None)
    if state is None or not state.cases or config.getoption("dsmip4_summary") == "caller":
        return
    summary = json.loads((state.out / "results.json").read_text())["summary"]
    tr = terminalreporter
    tr.section("DSMIPv4 conformance")
    tr.write_line(", ".join(f"{k} {v}" for k, v in summary["counts"].items()))
    tr.write_line(f"total {summary['duration']:.1f} s, of which protocol waits "
                  f"{summary['protocol_wait']:.1f} s")
    tr.write_line(f"report: {state.out / 'report.html'}")
