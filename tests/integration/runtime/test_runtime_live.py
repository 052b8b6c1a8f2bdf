"""The OCI runtime with real namespaces, mounts and cgroups (root only; see conftest)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys

import pytest

from kade import errors
from kade.oci import defaults
from kade.oci.mount import Mount
from kade.runtime import console_pair, receive_console

from runtime_harness import cgroup_dirs, make_rootfs, read_all


def test_exit_code_propagates(harness):
    assert harness.run(["sh", "-c", "exit 7"]) == (7, "")


def test_command_not_found_leaves_nothing(harness):
    cid, bundle = harness.bundle(["nope"])
    with pytest.raises(errors.CommandNotFound, match=r'exec: "nope": executable file not found'):
        harness.create(cid, bundle)
    assert not os.path.exists(os.path.join(harness.rt.state_root, cid))
    assert cgroup_dirs(f"/kade/{cid}") == []
    with pytest.raises(errors.NotFound):
        harness.rt.state(cid)


def test_absolute_command_not_found(harness):
    cid, bundle = harness.bundle(["/bin/nope"])
    with pytest.raises(errors.CommandNotFound,
                       match=r'exec: "/bin/nope": stat /bin/nope: no such file'):
        harness.create(cid, bundle)


def test_directory_is_not_invocable(harness):
    cid, bundle = harness.bundle(["/etc"])
    with pytest.raises(errors.CommandNotInvocable, match=r'exec: "/etc": permission denied'):
        harness.create(cid, bundle)


def test_exec_format_error_is_reported_by_start(harness):
    cid, bundle = harness.bundle(["/etc/marker"])
    os.chmod(os.path.join(bundle, "rootfs", "etc", "marker"), 0o755)
    pid = harness.create(cid, bundle)
    with pytest.raises(errors.CommandNotInvocable, match="exec format error"):
        harness.rt.start(cid)
    assert harness.wait(pid) == 126


def test_init_is_pid_1_and_proc_shows_only_the_container(harness):
    code, out = harness.run(["sh", "-c", "echo $$; ls -d /proc/[0-9]* | wc -l; hostname"])
    pid, count, hostname = out.split()
    assert (code, pid, hostname) == (0, "1", "kadetest")
    assert int(count) <= 3           # sh, ls, wc at most


def test_rootfs_is_the_new_root(harness):
    code, out = harness.run(["sh", "-c", "cat /etc/marker; test -e /work || echo no-host"])
    assert (code, out) == (0, "rootfs\nno-host\n")


def test_dev_is_populated(harness):
    code, out = harness.run(["sh", "-c", "ls /dev; readlink /dev/ptmx; readlink /dev/fd; echo x > /dev/null"])
    assert code == 0
    listing = out.split()
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
                 "stdin", "stdout", "stderr"):
        assert name in listing
    assert "pts/ptmx" in listing and "/proc/self/fd" in listing


def test_mounts_never_reach_the_host(harness):
    before = _mountinfo()
    cid, bundle = harness.bundle(["sleep", "100"])
    pid = harness.create(cid, bundle)
    assert _mountinfo() == before
    assert bundle not in "".join(_mountinfo())
    harness.rt.kill(cid, signal.SIGKILL)
    harness.wait(pid)
    harness.rt.delete(cid)
    assert _mountinfo() == before


def test_the_caller_stays_in_its_pid_namespace(harness):
    own = os.readlink("/proc/self/ns/pid")
    for _ in range(3):
        assert harness.run(["true"]) == (0, "")
        assert os.readlink("/proc/self/ns/pid_for_children") == own


def test_create_then_start_from_another_process(harness):
    cid, bundle = harness.bundle(["sh", "-c", "exit 5"])
    pid = harness.create(cid, bundle)
    assert harness.rt.state(cid)["status"] == "created"
    subprocess.run([sys.executable, "-m", "kade.runtime.cli", "--root", harness.rt.state_root,
                    "start", cid], check=True)
    assert harness.wait(pid) == 5
    assert harness.rt.state(cid)["status"] == "stopped"
    harness.rt.delete(cid)


def test_state_kill_and_delete(harness):
    cid, bundle = harness.bundle(["sleep", "100"])
    pid = harness.create(cid, bundle)
    harness.rt.start(cid)
    state = harness.rt.state(cid)
    assert (state["status"], state["pid"], state["bundle"]) == ("running", pid, bundle)
    with pytest.raises(errors.Conflict):
        harness.rt.delete(cid)
    harness.rt.kill(cid, signal.SIGKILL)
    assert harness.wait(pid) == -signal.SIGKILL
    assert harness.rt.state(cid)["status"] == "stopped"
    harness.rt.delete(cid)
    assert cgroup_dirs(f"/kade/{cid}") == []
    assert harness.rt.list() == []


def test_force_delete_kills_a_running_container(harness):
    cid, bundle = harness.bundle(["sleep", "100"])
    pid = harness.create(cid, bundle)
    harness.rt.start(cid)
    harness.rt.delete(cid, force=True)
    assert harness.wait(pid) == -signal.SIGKILL
    assert cgroup_dirs(f"/kade/{cid}") == []


def test_delete_of_a_created_container_kills_it(harness):
    cid, bundle = harness.bundle(["true"])
    pid = harness.create(cid, bundle)
    harness.rt.delete(cid)
    assert harness.wait(pid) == -signal.SIGKILL


def test_pause_and_resume(harness):
    cid, bundle = harness.bundle(["sleep", "100"])
    harness.create(cid, bundle)
    harness.rt.start(cid)
    harness.rt.pause(cid)
    assert harness.rt.state(cid)["status"] == "paused"
    harness.rt.resume(cid)
    assert harness.rt.state(cid)["status"] == "running"
    harness.rt.delete(cid, force=True)


def test_exec_joins_the_running_container(harness):
    cid, bundle = harness.bundle(["sleep", "100"])
    harness.create(cid, bundle)
    harness.rt.start(cid)
    r, w = os.pipe()
    process = {**harness.spec(bundle)["process"],
               "args": ["sh", "-c", "cat /proc/1/cmdline; echo; echo $$; hostname; pwd"],
               "cwd": "/etc"}
    pid = harness.rt.exec(cid, process, stdio=(None, w, w))
    os.close(w)
    out = read_all(r)
    os.close(r)
    assert _wait(pid) == 0
    cmdline, own_pid, hostname, cwd = out.splitlines()
    assert cmdline == "sleep\x00100\x00"
    assert own_pid != "1" and int(own_pid) != pid      # its own pid, in the container's ns
    assert (hostname, cwd) == ("kadetest", "/etc")
    harness.rt.delete(cid, force=True)


def test_exec_runs_in_the_container_cgroup(harness):
    cid, bundle = harness.bundle(["sleep", "100"])
    init = harness.create(cid, bundle)
    harness.rt.start(cid)
    pid = harness.rt.exec(cid, {**harness.spec(bundle)["process"], "args": ["sleep", "50"]},
                          detach=True)
    assert sorted(_cgroup_procs(cid)) == sorted([init, pid])
    os.kill(pid, signal.SIGKILL)
    assert _wait(pid) == -signal.SIGKILL
    harness.rt.delete(cid, force=True)


def test_exec_of_a_missing_command(harness):
    cid, bundle = harness.bundle(["sleep", "100"])
    harness.create(cid, bundle)
    harness.rt.start(cid)
    with pytest.raises(errors.CommandNotFound):
        harness.rt.exec(cid, {**harness.spec(bundle)["process"], "args": ["nope"]})
    harness.rt.delete(cid, force=True)


def test_rlimits_are_set_and_clamped(harness):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
               {"type": "RLIMIT_NPROC", "soft": 2**63, "hard": 2**64 - 1}]
    cid, bundle = harness.bundle(["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u"])
    spec = harness.spec(bundle)
    spec["process"]["rlimits"] = rlimits
    code, out = _run_spec(harness, cid, bundle, spec)
    assert code == 0
    assert out.split()[:2] == ["123", str(min(456, hard))]


def test_read_only_root(harness):
    code, out = harness.run(["sh", "-c", "touch /etc/x 2>/dev/null || echo ro; touch /dev/shm/ok"],
                            root={"path": "rootfs", "readonly": True})
    assert (code, out) == (0, "ro\n")


def test_masked_and_read_only_paths(harness):
    masked_file = next(p for p in defaults.MASKED_PATHS
                       if os.path.isfile(p) and os.path.getsize(p) == 0 and _readable(p))
    code, out = harness.run(["sh", "-c",
                             f"wc -c < {masked_file}; ls /sys/firmware | wc -l; "
                             "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null || echo ro"])
    assert (code, out.split()) == (0, ["0", "0", "ro"])


def test_working_directory_is_created(harness):
    cid, bundle = harness.bundle(["pwd"])
    spec = harness.spec(bundle)
    spec["process"]["cwd"] = "/app/work"
    assert _run_spec(harness, cid, bundle, spec) == (0, "/app/work\n")


def test_user_and_groups(harness):
    cid, bundle = harness.bundle(["id"])
    spec = harness.spec(bundle)
    spec["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [1002]}
    code, out = _run_spec(harness, cid, bundle, spec)
    assert code == 0
    assert out.startswith("uid=1000 gid=1001 groups=1002")


def test_extra_fds_start_at_3(harness):
    cid, bundle = harness.bundle(["sh", "-c", "echo via-fd-3 >&3"])
    r, w = os.pipe()
    code, _ = harness.run_bundle(cid, bundle, extra_fds=[w])
    os.close(w)
    assert code == 0
    assert read_all(r) == "via-fd-3\n"
    os.close(r)


def test_console_is_a_tty(harness):
    cid, bundle = harness.bundle(["sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; "
                                              "tty; stat -c %t,%T /dev/console"])
    spec = harness.spec(bundle)
    spec["process"]["terminal"] = True
    _write_spec(bundle, spec)
    ours, theirs = console_pair()
    pid = harness.create(cid, bundle, console_socket=theirs)
    os.close(theirs)
    master, name = receive_console(ours)
    assert name == "/dev/pts/0"      # made in the container's own devpts, as runc does
    harness.rt.start(cid)
    assert harness.wait(pid) == 0
    out = _read_pty(master).split()
    assert out == ["is-a-tty", "/dev/pts/0", "88,0"]  # /dev/console is that slave (136:0)
    harness.rt.delete(cid)


def test_seccomp_default_profile_is_applied(harness):
    cid, bundle = harness.bundle(["sh", "-c", "grep Seccomp: /proc/self/status"])
    spec = harness.spec(bundle)
    spec["linux"]["seccomp"] = defaults.default_seccomp(defaults.DEFAULT_CAPS)
    code, out = _run_spec(harness, cid, bundle, spec)
    assert code == 0
    assert out.split()[:2] == ["Seccomp:", "2"]


def test_no_new_privileges(harness):
    cid, bundle = harness.bundle(["grep", "NoNewPrivs:", "/proc/self/status"])
    spec = harness.spec(bundle)
    spec["process"]["noNewPrivileges"] = True
    spec["linux"]["seccomp"] = defaults.default_seccomp(defaults.DEFAULT_CAPS)
    code, out = _run_spec(harness, cid, bundle, spec)
    assert (code, out.split()) == (0, ["NoNewPrivs:", "1"])


def test_failed_mount_names_the_step_and_leaves_nothing(harness):
    cid, bundle = harness.bundle(["true"])
    spec = harness.spec(bundle)
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": "/no/such/dir",
                           "options": ["rbind"]})
    _write_spec(bundle, spec)
    with pytest.raises(errors.FailedPrecondition,
                       match=r'mount "/no/such/dir" to rootfs at "/data": no such file'):
        harness.create(cid, bundle)
    assert not os.path.exists(os.path.join(harness.rt.state_root, cid))
    assert cgroup_dirs(f"/kade/{cid}") == []
    with pytest.raises(ChildProcessError):          # the child was killed and reaped
        os.waitpid(-1, os.WNOHANG)


def test_bind_mount_read_only(harness, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in").write_text("from host\n")
    cid, bundle = harness.bundle(["sh", "-c", "cat /data/in; touch /data/x 2>/dev/null || echo ro"])
    spec = harness.spec(bundle)
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(shared),
                           "options": ["rbind", "ro"]})
    assert _run_spec(harness, cid, bundle, spec) == (0, "from host\nro\n")


def test_overlay_rootfs_mount(harness, tmp_path):
    lower = make_rootfs(str(tmp_path / "lower"))
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    cid, bundle = harness.bundle(["sh", "-c", "echo new > /etc/new; cat /etc/marker"])
    empty_root = os.path.join(bundle, "rootfs-overlay")
    os.mkdir(empty_root)
    spec = harness.spec(bundle)
    spec["root"] = {"path": "rootfs-overlay"}
    _write_spec(bundle, spec)
    overlay = Mount("overlay", "overlay",
                    (f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}"), "/")
    before = _mountinfo()
    code, out = harness.run_bundle(cid, bundle, rootfs_mounts=[overlay])
    assert (code, out) == (0, "rootfs\n")
    assert (upper / "etc" / "new").read_text() == "new\n"
    assert os.listdir(empty_root) == []
    assert _mountinfo() == before


def test_runtime_cli_run_returns_the_exit_code(harness):
    cid, bundle = harness.bundle(["sh", "-c", "echo out; exit 3"])
    proc = subprocess.run([sys.executable, "-m", "kade.runtime.cli", "--root",
                           harness.rt.state_root, "run", "--bundle", bundle, cid],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (3, "out\n")
    assert harness.rt.list() == []


RUNC = "/usr/sbin/runc"
PARITY_SCRIPT = ("echo pid=$$; hostname; id; ls /dev; cat /etc/marker; "
                 "set -- /proc/[0-9]*; echo $#; ls /sys/fs/cgroup; "
                 "touch /proc/sys/x 2>/dev/null || echo ro-sys; wc -c < /proc/kcore; "
                 "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status")


@pytest.mark.skipif(not os.path.exists(RUNC), reason="needs runc (apt-get install runc)")
def test_behaves_like_runc(harness, tmp_path):
    cid, bundle = harness.bundle(["sh", "-c", PARITY_SCRIPT])
    ours = subprocess.run([sys.executable, "-m", "kade.runtime.cli", "--root",
                           harness.rt.state_root, "run", "--bundle", bundle, cid],
                          capture_output=True, text=True, timeout=60)
    theirs = subprocess.run([RUNC, "--root", str(tmp_path / "runc"), "run", "--bundle", bundle,
                             cid + "-runc"], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert theirs.returncode == 0, theirs.stderr
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)


# -- helpers ---------------------------------------------------------------------

def _wait(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _write_spec(bundle: str, spec: dict) -> None:
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)


def _run_spec(harness, cid: str, bundle: str, spec: dict) -> tuple[int, str]:
    _write_spec(bundle, spec)
    return harness.run_bundle(cid, bundle)


def _readable(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return bool(f.read(1))
    except OSError:
        return False


def _mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(f.read().splitlines())


def _cgroup_procs(cid: str) -> list[int]:
    with open(f"/sys/fs/cgroup/pids/kade/{cid}/cgroup.procs") as f:
        return [int(p) for p in f.read().split()]


def _read_pty(master: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:              # EIO: the slave side is closed everywhere
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_cgroup_mount_without_a_cgroup_namespace(harness):
    cid, bundle = harness.bundle(["sh", "-c", "grep pids /proc/self/cgroup; "
                                              "cat /sys/fs/cgroup/pids/pids.max"])
    spec = harness.spec(bundle)
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "cgroup"]
    spec["linux"]["resources"] = {"pids": {"limit": 77}}
    code, out = _run_spec(harness, cid, bundle, spec)
    assert code == 0
    hierarchy, path = out.split()[0].split(":", 2)[1:]
    assert (hierarchy, path, out.split()[1]) == ("pids", f"/kade/{cid}", "77")


def test_pids_limit_applies_from_the_start(harness):
    cid, bundle = harness.bundle(["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max; "
                                              "for i in 1 2 3 4 5 6; do sleep 5 & done; wait"])
    spec = harness.spec(bundle)
    spec["linux"]["resources"] = {"pids": {"limit": 4}}
    code, out = _run_spec(harness, cid, bundle, spec)
    assert (code, out) == (2, "4\nsh: can't fork: Resource temporarily unavailable\n")


def test_exec_with_a_console_and_sysctl_and_domainname(harness):
    cid, bundle = harness.bundle(["sleep", "100"])
    spec = harness.spec(bundle)
    spec["domainname"] = "example.org"
    spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    _write_spec(bundle, spec)
    harness.create(cid, bundle)
    harness.rt.start(cid)
    ours, theirs = console_pair()
    process = {**spec["process"], "terminal": True, "consoleSize": {"height": 30, "width": 99},
               "args": ["sh", "-c", "test -t 0 && tty; stty size; "
                                    "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname"]}
    pid = harness.rt.exec(cid, process, console_socket=theirs)
    os.close(theirs)
    master, _ = receive_console(ours)
    assert _wait(pid) == 0
    out = _read_pty(master).split()
    assert out == ["/dev/pts/0", "30", "99", "1", "example.org"]
    harness.rt.delete(cid, force=True)


def test_concurrent_creates_from_threads(harness):
    import threading

    bundles = [harness.bundle(["sh", "-c", f"exit {n}"]) for n in (11, 12, 13)]
    results: dict[str, int] = {}
    failures: list[BaseException] = []

    def run(cid: str, bundle: str) -> None:
        try:
            pid = harness.rt.create(cid, bundle)
            harness.rt.start(cid)
            results[cid] = _wait(pid)
            harness.rt.delete(cid)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            failures.append(e)

    threads = [threading.Thread(target=run, args=b) for b in bundles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(results.values()) == [11, 12, 13]
    assert os.readlink("/proc/self/ns/pid_for_children") == os.readlink("/proc/self/ns/pid")


def test_cli_console_socket_sends_the_pty_master(harness, tmp_path):
    import socket
    import threading

    cid, bundle = harness.bundle(["sh", "-c", "test -t 1 && echo on-a-tty"])
    spec = harness.spec(bundle)
    spec["process"]["terminal"] = True
    _write_spec(bundle, spec)
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received: list[int] = []

    def accept() -> None:
        conn, _ = server.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
            received.extend(fds)

    t = threading.Thread(target=accept)
    t.start()
    proc = subprocess.run([sys.executable, "-m", "kade.runtime.cli", "--root",
                           harness.rt.state_root, "run", "--console-socket", path,
                           "--bundle", bundle, cid], capture_output=True, text=True, timeout=60)
    t.join()
    server.close()
    assert proc.returncode == 0, proc.stderr
    assert "on-a-tty" in _read_pty(received[0])


def test_a_symlink_in_the_image_cannot_aim_a_mount_at_the_host(harness, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    cid, bundle = harness.bundle(["sh", "-c", "echo in > /escape/x/file && cat /escape/x/file"])
    os.symlink(str(victim), os.path.join(bundle, "rootfs", "escape"))   # absolute, to the host
    spec = harness.spec(bundle)
    spec["mounts"].append({"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs"})
    assert _run_spec(harness, cid, bundle, spec) == (0, "in\n")
    assert os.listdir(victim) == []
    assert os.path.isdir(os.path.join(bundle, "rootfs", str(victim).lstrip("/"), "x"))
