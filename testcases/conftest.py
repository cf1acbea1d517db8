# `pytest testcases/ --testbed FILE --dut PROFILE` loads the conformance plugin from here.
pytest_plugins = ["conformance.suite.plugin"]
