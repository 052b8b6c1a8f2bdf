"""OCI hooks with real containers: each kind at its moment, in its namespace, with the
state on stdin; failures and timeouts (root only; see conftest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from runtime_harness import cgroup_dirs

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")
# a hook that records its stdin and mount namespace and appends its kind to "order"
HOST_HOOK = """#!/bin/sh
kind=$1; out=$2
cat > "$out/$kind.state"
readlink /proc/self/ns/mnt > "$out/$kind.mnt"
echo "$kind" >> "$out/order"
"""


def _hooks(tmp_path, **extra_per_kind):
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "hook.sh"
    script.write_text(HOST_HOOK)
    script.chmod(0o755)
    hooks = {kind: [{"path": str(script), "args": ["hook.sh", kind, str(out)]}]
             for kind in KINDS}
    # resolved in the container, where the output directory is bound at /out
    hooks["startContainer"] = [{"path": "/kade-start-hook",
                                "args": ["kade-start-hook", "startContainer", "/out"]}]
    hooks.update(extra_per_kind)
    return hooks, out


def _out_mount(out):
    return {"destination": "/out", "type": "bind", "source": str(out),
            "options": ["rbind", "rw"]}


def test_every_hook_runs_at_its_moment_in_its_namespace(harness, tmp_path):
    hooks, out = _hooks(tmp_path)
    cid, bundle = harness.bundle(["sh", "-c", "echo user >> /out/order"], hooks=hooks,
                                 annotations={"org.example": "yes"})
    spec = harness.spec(bundle)
    spec["mounts"].append(_out_mount(out))
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    start_hook = os.path.join(bundle, "rootfs", "kade-start-hook")
    with open(start_hook, "w") as f:
        f.write(HOST_HOOK)
    os.chmod(start_hook, 0o755)
    assert not os.path.exists("/kade-start-hook")     # so it can only resolve inside

    pid = harness.create(cid, bundle, stdio=(None, None, None))
    container_mnt = os.readlink(f"/proc/{pid}/ns/mnt")
    assert (out / "order").read_text().split() == ["prestart", "createRuntime",
                                                   "createContainer"]
    harness.rt.start(cid)
    assert harness.wait(pid) == 0
    harness.rt.delete(cid)

    assert (out / "order").read_text().split() == [
        "prestart", "createRuntime", "createContainer", "startContainer", "user",
        "poststart", "poststop"] or (out / "order").read_text().split() == [
        "prestart", "createRuntime", "createContainer", "startContainer", "poststart",
        "user", "poststop"]
    host_mnt = os.readlink("/proc/self/ns/mnt")
    expected = {"prestart": ("created", pid, host_mnt),
                "createRuntime": ("creating", pid, host_mnt),
                "createContainer": ("creating", 1, container_mnt),
                "startContainer": ("created", 1, container_mnt),
                "poststart": ("running", pid, host_mnt),
                "poststop": ("stopped", None, host_mnt)}
    for kind, (status, seen_pid, mnt) in expected.items():
        state = json.loads((out / f"{kind}.state").read_text())
        assert (state["status"], state.get("pid"), state["id"], state["bundle"],
                state["annotations"]) == (status, seen_pid, cid, bundle, {"org.example": "yes"}), kind
        assert (out / f"{kind}.mnt").read_text().strip() == mnt, kind


def _cli(harness, *args):
    return subprocess.run([sys.executable, "-m", "kade.runtime.cli", "--root",
                           harness.rt.state_root, *args], capture_output=True, text=True)


def test_a_failing_create_runtime_hook_fails_create_and_leaves_nothing(harness, tmp_path):
    failing = tmp_path / "fail.sh"
    failing.write_text("#!/bin/sh\necho 'no gpu here' >&2\nexit 3\n")
    failing.chmod(0o755)
    hooks, out = _hooks(tmp_path, createRuntime=[{"path": str(failing)}])
    cid, bundle = harness.bundle(["true"], hooks=hooks)
    proc = _cli(harness, "create", "--bundle", bundle, cid)
    assert proc.returncode != 0
    assert proc.stderr == (f'error: createRuntime hook #0 "{failing}" failed: exit status 3, '
                           'stderr: "no gpu here"\n')
    assert harness.rt.list() == []
    assert cgroup_dirs(f"/kade/{cid}") == []
    # destroyed, then the poststop hooks ran (runtime.md step 12, 13); nothing later did
    assert (out / "order").read_text().split() == ["prestart", "poststop"]


def test_a_failing_create_container_hook_fails_create(harness, tmp_path):
    hooks, out = _hooks(tmp_path, createContainer=[{"path": "/bin/false"}])
    cid, bundle = harness.bundle(["true"], hooks=hooks)
    proc = _cli(harness, "create", "--bundle", bundle, cid)
    assert proc.stderr == 'error: createContainer hook #0 "/bin/false" failed: exit status 1\n'
    assert harness.rt.list() == []
    assert cgroup_dirs(f"/kade/{cid}") == []


def test_a_hanging_hook_is_killed_at_its_timeout(harness, tmp_path):
    hanging = tmp_path / "hang.sh"
    hanging.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/hung.pid\nexec sleep 1000\n")
    hanging.chmod(0o755)
    cid, bundle = harness.bundle(["true"], hooks={
        "createRuntime": [{"path": str(hanging), "timeout": 1}]})
    proc = _cli(harness, "create", "--bundle", bundle, cid)
    assert proc.stderr == (f'error: createRuntime hook #0 "{hanging}" ran past its timeout '
                           "of 1s and was killed\n")
    hung = int((tmp_path / "hung.pid").read_text())
    assert not os.path.exists(f"/proc/{hung}")
    assert harness.rt.list() == []


def test_a_failing_start_container_hook_stops_the_container(harness, tmp_path):
    cid, bundle = harness.bundle(["sh", "-c", "echo ran > /tmp/ran"], hooks={
        "startContainer": [{"path": "/bin/false"}]})
    pid = harness.create(cid, bundle, stdio=(None, None, None))
    proc = _cli(harness, "start", cid)
    assert proc.stderr == 'error: startContainer hook #0 "/bin/false" failed: exit status 1\n'
    harness.wait(pid)
    assert harness.rt.state(cid)["status"] == "stopped"
    assert not os.path.exists(os.path.join(bundle, "rootfs", "tmp", "ran"))


def test_poststart_and_poststop_failures_are_warnings(harness, tmp_path):
    cid, bundle = harness.bundle(["true"], hooks={"poststart": [{"path": "/bin/false"}],
                                                  "poststop": [{"path": "/bin/false"}]})
    proc = _cli(harness, "run", "--bundle", bundle, cid)
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == [
        'warning: poststart hook #0 "/bin/false" failed: exit status 1',
        'warning: poststop hook #0 "/bin/false" failed: exit status 1']
