"""The attack probe (probes/probe.c), built once per session and run in containers.

`probe` is a fixture: the path of a static binary that a test bind-mounts at /probe
(`-v PATH:/probe:ro`). `attacks(kade, probe, specs)` runs every spec in one container
and returns {spec: (result, detail)}, where result is "OK" when the attack's syscall
went through, else the errno's name or the attack's own word (see probe.c).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

SOURCE = os.path.join(os.path.dirname(__file__), "probes", "probe.c")


@pytest.fixture(scope="session")
def probe(tmp_path_factory) -> str:
    if os.uname().machine != "x86_64":
        pytest.skip("the attack probe uses x86_64 syscalls (iopl, ioperm)")
    if not shutil.which("gcc"):
        pytest.skip("gcc is missing: the attack probe is compiled at test time "
                    "(apt-get install gcc libc6-dev)")
    out = str(tmp_path_factory.mktemp("probe") / "probe")
    build = subprocess.run(["gcc", "-static", "-O2", "-o", out, SOURCE],
                           capture_output=True, text=True)
    if build.returncode != 0 and "cannot find -lc" in build.stderr:
        pytest.skip("static libc is missing (apt-get install libc6-dev)")
    assert build.returncode == 0, build.stderr
    return out


def mount_of(probe: str) -> list[str]:
    return ["-v", f"{probe}:/probe:ro"]


def parse(stdout: str) -> dict[str, tuple[str, str]]:
    out = {}
    for line in stdout.splitlines():
        spec, result, *detail = line.split(" ", 2)
        out[spec] = (result, detail[0] if detail else "")
    return out


def attacks(kade, probe: str, specs: list[str], *run_args: str) -> dict[str, tuple[str, str]]:
    """Run each attack in one default container (plus run_args) and parse its report."""
    proc = kade("run", "--rm", *mount_of(probe), *run_args, "busybox", "/probe", *specs)
    got = parse(proc.stdout)
    assert list(got) == specs, f"the probe reported {proc.stdout!r}"
    return got
