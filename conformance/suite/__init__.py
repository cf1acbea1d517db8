"""The conformance engine: YAML test cases, their steps and checks, verdicts and the pytest
plugin that runs them against a device under test on a lab."""
