# `make run`: set up, then run the main job. `make test`: set up, then run every check.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test selftest bench mutation check-catalog clean

setup:
	@bash tools/setup.sh

run: setup
	$(BIN)/dsmip4 run

check-catalog: setup
	$(BIN)/python tools/check_catalog.py

test: setup
	$(BIN)/python tools/check_catalog.py
	$(BIN)/python tools/check_coverage.py
	$(BIN)/python -m pytest

selftest: setup
	$(BIN)/dsmip4 selftest

# mutmut mutates the reference nodes and the codec ([tool.mutmut] in pyproject.toml); the
# killing test is the YAML suite in memory. Writes docs/mutation-survivors.md.
mutation: setup
	rm -rf mutants
	$(BIN)/mutmut run --max-children $$(nproc) || true
	$(BIN)/python tools/mutation_report.py

bench: setup
	$(BIN)/dsmip4 bench codec

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
