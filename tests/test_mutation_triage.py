"""The mutation report's triage rules: a rule may only take a mutant out of the score when
the change cannot show on the wire, and must leave every real behaviour change open."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import mutation_report as report  # noqa: E402


def _classified(before: str, after: str, file="conformance/nodes/ha.py", **kw):
    m = report.Mutant("x.y__mutmut_1", file, "HomeAgent._reply", "survived", 1, before, after,
                      **kw)
    report.classify(m, {})
    return m


def test_dropping_a_default_argument_is_equivalent():
    assert _classified('x = v.to_bytes(2, "big")', 'x = v.to_bytes(2, )').kind == "equivalent"
    assert _classified('n = int.from_bytes(p, "big") >> 3',
                       'n = int.from_bytes(p, ) >> 3').kind == "equivalent"
    assert _classified('a, b = S.unpack_from(data, 0)',
                       'a, b = S.unpack_from(data, )').kind == "equivalent"
    assert _classified('d = hmac.digest(k, m, "md5")',
                       'd = hmac.digest(k, m, "MD5")').kind == "equivalent"


def test_a_changed_width_offset_or_value_stays_open():
    assert _classified('x = v.to_bytes(2, "big")', 'x = v.to_bytes(3, "big")').kind == "open"
    assert _classified('x = v.to_bytes(2, "big")', 'x = v.to_bytes(2, "little")').kind == "open"
    assert _classified('a = S.unpack_from(data, 2)[0]',
                       'a = S.unpack_from(data, )[0]').kind == "open"


def test_wire_length_is_always_none_on_the_device():
    assert _classified("_short(buf, ext.type, body, ext.wire_length)",
                       "_short(buf, ext.type, body, None)",
                       file="conformance/codec/encode.py").kind == "equivalent"
    assert _classified("_short(buf, ext.type, body, ext.wire_length)",
                       "_short(buf, None, body, ext.wire_length)",
                       file="conformance/codec/encode.py").kind == "open"


def test_a_log_record_named_by_a_condition_is_not_observable():
    m = _classified('Event("registration-accepted" if accepted else "registration-rejected")',
                    'Event("registration-accepted" if not accepted else '
                    '"registration-rejected")', event="registration-accepted|"
                    "registration-rejected")
    assert m.kind == "unobservable"
    # ...unless one of the names is a record the suite reads
    m = _classified('Event("route-add" if add else "route-del")',
                    'Event("route-add" if not add else "route-del")',
                    event="route-add|route-del")
    assert m.kind == "open"


def test_the_home_address_tunnel_mode_is_any_mode_but_coa():
    assert _classified('return self._tunnel_to(binding, packet, "hoa") + [',
                       'return self._tunnel_to(binding, packet, "HOA") + [').kind == "equivalent"
    assert _classified('return self._tunnel_to(binding, packet, "hoa") + [',
                       'return self._tunnel_to(binding, packet, "coa") + [').kind == "open"


def test_a_parameter_read_only_for_a_log_record(tmp_path, monkeypatch):
    source = tmp_path / "conformance" / "nodes" / "fa.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "class FA:\n"
        "    def _deny(self, request, code, reason, log=True):\n"
        "        sent = [send(request, code)]\n"
        "        if not log:\n"
        "            return sent\n"
        "        return sent + [Event('registration-denied', {'reason': reason})]\n")
    monkeypatch.setattr(report, "ROOT", tmp_path)
    report._unused_parameters.cache_clear()  # cached by path: read the file above
    params = dict(report._unused_parameters("conformance/nodes/fa.py")["_deny"])
    report._unused_parameters.cache_clear()
    assert params == {"request": True, "code": True, "reason": False, "log": False}


def test_a_renamed_state_key_counts_only_when_no_check_reads_it():
    def view(function, before, after):
        m = report.Mutant("x.y__mutmut_1", "conformance/nodes/mn.py", function, "survived", 1,
                          before, after)
        report.classify(m, {})
        return m.kind
    line = 'return {"home_address": self.config.home_address, "mode": self.mode,'
    assert view("MobileNode.status", line, line.replace('"mode"', '"XXmodeXX"')) == \
        "unobservable"
    # the MN's registration flag is what mn_registered reads: renaming it is behaviour
    line = '"care_of_address": self.care_of_address, "registered": self.registered,'
    assert view("MobileNode.status", line, line.replace('"registered"', '"REGISTERED"')) == \
        "open"
    # a binding's home address is how every binding check finds its row
    line = 'return {"home_address": self.home_address, "care_of_address": self.coa,'
    assert view("Binding.to_dict", line, line.replace('"home_address"', '"HOME_ADDRESS"')) == \
        "open"
    assert view("Binding.to_dict", line, line.replace('"care_of_address"', '"CARE"')) == \
        "unobservable"
