"""The selftest's plan, checked without a lab: which reference configuration runs which cases
for which fault, and how a run's results count as a catch."""

from conformance import selftest


def _plan():
    pairs, case_info = selftest._case_index()
    return pairs, case_info, selftest._profiles()


def test_every_case_runs_against_some_reference_configuration():
    _, case_info, profiles = _plan()
    orphans = [case for case, (role, pics) in case_info.items()
               if selftest._profile_for(role, pics, profiles) is None]
    assert orphans == []


def test_every_fault_has_cases_in_a_configuration_that_runs_them():
    pairs, case_info, profiles = _plan()
    for fault, role, requirements in selftest._faults():
        mapped = {c for r in requirements for c in pairs.get((r, role.upper()), [])}
        profile, cases = selftest._configuration_for(role, mapped, case_info, profiles)
        assert cases, f"{fault}: no case runnable against any reference configuration"
        assert all(profile.claims_all(case_info[c][1]) for c in cases)


def test_optional_feature_faults_use_the_variant_that_claims_the_feature():
    pairs, case_info, profiles = _plan()
    chosen = {}
    for fault, role, requirements in selftest._faults():
        mapped = {c for r in requirements for c in pairs.get((r, role.upper()), [])}
        chosen[fault] = selftest._configuration_for(role, mapped, case_info, profiles)[0].name
    assert chosen["ha.duplicate-prefix-reply"] == "reference-ha"
    assert chosen["ha.dynamic-mtu-no-df"] == "reference-ha-dynamic-mtu"
    assert chosen["ha.honour-ignored-tunneling-mode"] == "reference-ha-tunneling-mode-ignored"
    assert chosen["mn.implicit-prefixes-not-tunnelled"] == "reference-mn-implicit-mode"
    assert chosen["fa.accept-bad-fa-ha-auth"] == "reference-fa-fa-ha-auth"


def test_faulty_profile_extends_its_configuration(tmp_path):
    from conformance.lab.profile import load_profile

    _, _, profiles = _plan()
    variant = next(p for p in profiles["ha"] if p.name == "reference-ha-dynamic-mtu")
    faulty = load_profile(selftest._faulty_profile(variant, "ha.dynamic-mtu-no-df", tmp_path))
    assert faulty.parameters["faults"] == "[ha.dynamic-mtu-no-df]"
    assert faulty.parameters["dynamic_tunnel_mtu"] == "true" and faulty.claims(
        "dynamic-tunnel-mtu")


def test_a_catch_needs_a_failing_check_mapped_to_the_broken_requirement():
    def case(verdict, ok, reqs):
        return {"id": "X-1", "verdict": verdict, "checks": [{"ok": ok, "requirements": reqs}]}
    assert selftest._caught({"cases": [case("FAIL", False, ["R-1"])]}, ["R-1"]) == ["X-1 FAIL"]
    assert selftest._caught({"cases": [case("FAIL", False, ["R-2"])]}, ["R-1"]) == []
    assert selftest._caught({"cases": [case("PASS", True, ["R-1"])]}, ["R-1"]) == []
    assert selftest._caught({"cases": [case("ERROR", False, ["R-1"])]}, ["R-1"]) == []
    # A check that could not be judged (a peer dropped the message) is not a catch, even in a
    # case that failed on another requirement.
    unjudged = case("FAIL", None, ["R-1"])
    unjudged["checks"].append({"ok": False, "requirements": ["R-2"]})
    assert selftest._caught({"cases": [unjudged]}, ["R-1"]) == []
