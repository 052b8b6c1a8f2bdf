"""The OCI runtime-tools validation suite against `kade runtime`: a sample of its
executables, each of which runc or crun fully passes on our hosts (docs/compat.md has
the whole run). The suite is built from a fetched checkout by
scripts/conformance/runtime-tools.sh; where it was not built (CI cannot fetch), skip."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.compat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "conformance", "runtime-tools.sh")
CACHE = os.environ.get("RT_CACHE", "/var/cache/kade-conformance/runtime-tools")
# quick ones (a few seconds each), covering what the fixes of issue 10 touched: the
# default bundle, capabilities, devices and their cgroup, relative cgroupsPath, kill
SAMPLE = ("default", "linux_devices", "linux_cgroups_devices", "linux_cgroups_relative_devices",
          "linux_cgroups_relative_cpus", "kill")
# a *_fail executable prints no TAP when the runtime rightly refuses its spec: it
# passes by exiting 0 (and 1 when the runtime accepts the bad value, as runc does)
REFUSALS = ("process_capabilities_fail",)

if os.geteuid() != 0:
    pytest.skip("the runtime-tools suite needs root", allow_module_level=True)
if not os.access(os.path.join(CACHE, "src", "runtimetest"), os.X_OK):
    pytest.skip(f"the runtime-tools suite is not built in {CACHE}: fetch "
                "opencontainers/runtime-tools and run "
                f"'{SCRIPT} build MIRROR' (see docs/compat.md)", allow_module_level=True)


def test_sample_of_the_suite_fully_passes():
    env = {**os.environ, "RT_CACHE": CACHE, "KADE_PYTHON": sys.executable}
    r = subprocess.run([SCRIPT, "run", "kade", *SAMPLE, *REFUSALS], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:-1]}
    assert sorted(lines) == sorted(SAMPLE + REFUSALS), r.stdout
    failed = [lines[name] for name in SAMPLE if " PASS " not in lines[name]]
    failed += [lines[name] for name in REFUSALS if not lines[name].endswith(" exit=0")]
    assert not failed, "\n".join(failed) + f"\nTAP files: {CACHE}/results/kade/"
