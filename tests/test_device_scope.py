"""Under `make mutation` only the device's code runs mutated: the judge reads it clean."""

from __future__ import annotations

import importlib
import os
import sys
import types

import pytest

from conformance.adapters import device_scope

MUTANT = "conformance.codec.decode.x_decode_request__mutmut_3"


@pytest.fixture
def scope(monkeypatch):
    monkeypatch.delenv(device_scope.VARIABLE, raising=False)
    monkeypatch.delitem(sys.modules, "mutmut.mutation.trampoline", raising=False)
    yield importlib.reload(device_scope)
    importlib.reload(device_scope)


def test_the_judge_runs_clean_and_the_device_mutated(scope, monkeypatch):
    # As mutmut runs a mutant: its process-local copy and the variable both name it.
    monkeypatch.setitem(sys.modules, "mutmut.mutation.trampoline",
                        types.SimpleNamespace(_mutant_under_test=MUTANT))
    monkeypatch.setenv(scope.VARIABLE, MUTANT)
    scope.judge_runs_clean()
    assert os.environ[scope.VARIABLE] == ""
    with scope.device():
        assert os.environ[scope.VARIABLE] == MUTANT
        with scope.device():  # the device's code calling more of its code
            assert os.environ[scope.VARIABLE] == MUTANT
        assert os.environ[scope.VARIABLE] == MUTANT
    assert os.environ[scope.VARIABLE] == ""


def test_a_mutant_named_only_by_the_variable_stays_the_devices(scope, monkeypatch):
    monkeypatch.setenv(scope.VARIABLE, MUTANT)
    scope.judge_runs_clean()
    assert os.environ[scope.VARIABLE] == ""
    with scope.device():
        assert os.environ[scope.VARIABLE] == MUTANT


@pytest.mark.parametrize("mode", ["", "fail"])
def test_mutmut_modes_and_plain_runs_are_left_alone(scope, monkeypatch, mode):
    monkeypatch.setenv(scope.VARIABLE, mode)
    scope.judge_runs_clean()
    with scope.device():
        assert os.environ[scope.VARIABLE] == mode
    assert os.environ[scope.VARIABLE] == mode
