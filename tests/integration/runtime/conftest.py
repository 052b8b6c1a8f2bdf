from runtime_harness import harness  # noqa: F401 - the fixture for this directory
