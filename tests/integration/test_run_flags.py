"""docker run's flags, each checked the way a user would see its effect."""

import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]


def sh(kade, *flags, script: str, check=True):
    return kade("run", "--rm", *flags, "busybox", "sh", "-c", script, check=check)


def test_tty_is_a_real_terminal_that_follows_the_window_size(kade):
    pid, master = pty.fork()
    if pid == 0:  # the user's terminal runs `kade run -it busybox sh`
        os.execv(KADE[0], KADE + ["--root", kade.root, "run", "--rm", "-it", "busybox", "sh"])
    status = None
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        _talk(master, b"", b"/ #")  # the prompt
        out = _talk(master, b"tty; stty size; echo done-$((6*7))\r", b"done-42")
        assert b"/dev/pts/0" in out and b"33 111" in out
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.kill(pid, 28)  # SIGWINCH, as the terminal would send it
        time.sleep(0.3)
        assert b"40 120" in _talk(master, b"stty size; echo again-$((1+1))\r", b"again-2")
        os.write(master, b"exit 3\r")
        status = _wait(pid, master, 10)
    finally:
        if status is None:
            os.kill(pid, 9)
            status = os.waitpid(pid, 0)[1]
    assert os.waitstatus_to_exitcode(status) == 3


def _wait(pid: int, fd: int, timeout: float) -> int | None:
    """The child's wait status, reading (and discarding) its terminal meanwhile."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        try:
            _talk(fd, b"", b"never", timeout=0.1)
        except OSError:  # EIO: the terminal's other side closed
            time.sleep(0.05)
    return None


def _talk(fd: int, line: bytes, until: bytes, timeout: float = 10) -> bytes:
    """Type a line; read until `until`, answering cursor-position queries (ESC[6n)
    the way a terminal does: busybox's line editor waits for the answer."""
    os.write(fd, line)
    out, deadline = b"", time.time() + timeout
    while until not in out and time.time() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 4096)
            if b"\x1b[6n" in chunk:
                os.write(fd, b"\x1b[1;1R")
            out += chunk
    return out


@pytest.mark.skipif(not os.path.exists("/usr/bin/tini-static"),
                    reason="--init needs Debian's tini (apt-get install tini)")
def test_init_is_pid_1_and_reaps(kade):
    out = sh(kade, "--init", script="cat /proc/1/comm; echo $$").stdout.split()
    assert out[0] in ("docker-init", "tini-static") and out[1] != "1"


def test_ulimit_is_set_and_never_above_the_host(kade):
    assert sh(kade, "--ulimit", "nofile=512:1024", script="ulimit -n; ulimit -Hn").stdout \
        .split() == ["512", "1024"]
    hard = int(open("/proc/self/limits").read().split("Max open files")[1].split()[1])
    out = sh(kade, "--ulimit", f"nofile={hard * 4}:{hard * 4}", script="ulimit -Hn").stdout
    assert int(out) <= hard


def test_bad_ulimit_is_one_line_and_125(kade):
    p = kade("run", "--rm", "--ulimit", "nofile=9:1", "busybox", "true", check=False)
    assert p.returncode == 125 and p.stderr.count("\n") == 1 and "9 > 1" in p.stderr


@pytest.mark.parametrize("flags,mask", [
    ([], "00000000a80425fb"),
    (["--cap-drop", "ALL"], "0000000000000000"),
    (["--cap-drop", "all", "--cap-add", "net_bind_service"], "0000000000000400"),
    (["--cap-add", "SYS_ADMIN"], "00000000a82425fb"),
])
def test_capabilities(kade, flags, mask):
    assert sh(kade, *flags, script="grep CapEff /proc/self/status").stdout.split()[1] == mask


def test_unknown_capability_is_refused_and_leaves_nothing(kade):
    for rm in (["--rm"], []):
        p = kade("run", *rm, "--cap-add", "FOO", "busybox", "true", check=False)
        assert p.returncode == 125 and '"CAP_FOO"' in p.stderr
        assert kade("ps", "-aq").stdout == ""


def test_a_start_failure_with_rm_leaves_nothing(kade):
    p = kade("run", "--rm", "-u", "nosuchuser", "busybox", "true", check=False)
    assert p.returncode != 0 and "nosuchuser" in p.stderr and p.stderr.count("\n") == 1
    assert kade("ps", "-aq").stdout == ""


def test_privileged_can_mount_and_sees_all_capabilities(kade):
    out = sh(kade, "--privileged", script="mkdir -p /m && mount -t tmpfs none /m && echo mounted; "
             "grep CapEff /proc/self/status").stdout.split()
    host = [line for line in open("/proc/self/status") if line.startswith("CapBnd:")]
    assert out[0] == "mounted" and out[-1] == host[0].split()[1]


def test_no_new_privileges_only_when_asked(kade):
    assert "NoNewPrivs:\t0" in sh(kade, script="grep NoNewPrivs /proc/self/status").stdout
    out = sh(kade, "--security-opt", "no-new-privileges", script="grep NoNewPrivs /proc/self/status")
    assert "NoNewPrivs:\t1" in out.stdout


def test_seccomp_default_and_unconfined(kade):
    assert "Seccomp:\t2" in sh(kade, script="grep ^Seccomp: /proc/self/status").stdout
    out = sh(kade, "--security-opt", "seccomp=unconfined", script="grep ^Seccomp: /proc/self/status")
    assert "Seccomp:\t0" in out.stdout


def test_dns_and_add_host(kade):
    out = sh(kade, "--dns", "10.0.0.53", "--add-host", "db:10.0.0.7",
             script="cat /etc/resolv.conf /etc/hosts").stdout
    assert "nameserver 10.0.0.53" in out and "10.0.0.7\tdb" in out


def test_stop_signal_and_timeout(kade):
    kade("run", "-d", "--name", "sig", "--stop-signal", "USR1", "--stop-timeout", "5",
         "busybox", "sh", "-c", "trap 'echo got-usr1; exit 9' USR1; while :; do sleep 0.1; done")
    time.sleep(0.3)
    start = time.time()
    kade("stop", "sig")
    assert time.time() - start < 4  # the trap ran: no wait for the 5 s timeout
    assert kade("inspect", "-f", "{{.State.ExitCode}}", "sig").stdout.strip() == "9"
    assert kade("logs", "sig").stdout == "got-usr1\n"
    kade("rm", "sig")


def test_labels_and_ps_filters(kade):
    kade("create", "--name", "lab1", "-l", "tier=web", "busybox", "true")
    kade("run", "--name", "lab2", "-l", "tier=db", "busybox", "sh", "-c", "exit 4", check=False)

    def names(*f):
        return sorted(kade("ps", "-a", "--format", "{{.Names}}", *f).stdout.split())

    assert names("--filter", "label=tier=web") == ["lab1"]
    assert names("--filter", "label=tier") == ["lab1", "lab2"]
    assert names("--filter", "exited=4") == ["lab2"]
    assert names("--filter", "status=created", "--filter", "name=lab") == ["lab1"]
    assert "lab1" in names("--filter", "ancestor=busybox")
    assert kade("ps", "-a", "-n", "1", "--format", "{{.Names}}").stdout == "lab2\n"
    assert kade("ps", "-l", "-q").stdout.strip() == kade(
        "inspect", "-f", "{{.Id}}", "lab2").stdout.strip()[:12]
    assert kade("ps", "--filter", "bogus=1", check=False).returncode == 1
    bad = kade("ps", "-a", "--format", "{{.Nope}}", check=False)
    assert bad.returncode == 1 and "can't evaluate field Nope" in bad.stderr
    kade("rm", "lab1", "lab2")


def test_logs_tail_timestamps_since(kade):
    kade("run", "--name", "lg", "busybox", "sh", "-c", "for i in 1 2 3 4; do echo l$i; done")
    assert kade("logs", "--tail", "2", "lg").stdout == "l3\nl4\n"
    first = kade("logs", "-t", "lg").stdout.splitlines()[0]
    assert first.endswith(" l1") and first[:4].isdigit() and "T" in first.split()[0]
    assert kade("logs", "--since", str(time.time() + 60), "lg").stdout == ""
    bad = kade("logs", "--tail", "abc", "lg", check=False)
    assert (bad.returncode, bad.stderr) == (1, 'Error: invalid value for "tail": "abc"\n')
    kade("rm", "lg")


def test_start_attach_and_restart_rename_wait(kade):
    kade("create", "--name", "sa", "busybox", "sh", "-c", "echo attached; exit 5")
    p = kade("start", "-a", "sa", check=False)
    assert (p.returncode, p.stdout) == (5, "attached\n")
    kade("rename", "sa", "sb")
    assert kade("wait", "sb").stdout == "5\n"
    kade("restart", "sb")
    assert kade("wait", "sb").stdout == "5\n"
    assert kade("logs", "sb").stdout == "attached\nattached\n"
    kade("rm", "sb")


def test_volume_verbs(kade):
    kade("volume", "create", "--label", "k=v", "vv")
    assert kade("volume", "ls", "-q", "--filter", "label=k=v").stdout == "vv\n"
    assert kade("volume", "inspect", "-f", "{{.Driver}} {{.Labels.k}}", "vv").stdout == "local v\n"
    kade("run", "--name", "vuser", "-v", "vv:/d", "busybox", "true")
    assert kade("volume", "rm", "vv", check=False).returncode == 1  # in use
    assert kade("volume", "ls", "-q", "-f", "dangling=true").stdout == ""
    bad = kade("volume", "ls", "-f", "dangling=maybe", check=False)
    assert (bad.returncode, bad.stderr) == (1, 'Error: invalid filter "dangling=maybe"\n')
    kade("rm", "vuser")
    assert kade("volume", "ls", "-q", "-f", "dangling=true").stdout == "vv\n"
    kade("run", "--rm", "-v", "/anon", "busybox", "true")  # anonymous, removed with --rm
    kade("volume", "rm", "vv")
    assert kade("volume", "ls", "-q").stdout == ""


def test_read_only_named_volume_and_mount_flag(kade, tmp_path):
    out = sh(kade, "--mount", f"type=bind,source={tmp_path},target=/b,readonly",
             "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
             script="touch /b/x 2>/dev/null || echo ro; df -k /t | tail -1").stdout.split()
    assert out[0] == "ro" and out[2] == "1024"
    p = kade("run", "--rm", "--mount", "type=bind,source=/no/such,target=/x", "busybox",
             "true", check=False)
    assert p.returncode == 125 and "/no/such" in p.stderr and p.stderr.count("\n") == 1


def test_cpu_and_swap_limits_reach_the_cgroup(kade):
    out = sh(kade, "--cpus", "0.5", "-c", "512", "-m", "64m", "--memory-swap", "128m", script=(
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares "
        "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || "
        "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight")).stdout.split()
    if out[0].isdigit():  # cgroup v1
        assert out[:2] == ["50000", "512"]
        assert out[2:] in ([], [str(128 << 20)])  # memsw exists only with swap accounting
    else:  # cgroup v2: "50000 100000", then the weight
        assert out[:2] == ["50000", "100000"]


def test_concurrent_commands_keep_the_state_consistent(kade):
    import subprocess
    procs = [subprocess.Popen(KADE + ["--root", kade.root, "run", "-d", "--name", f"cc{i}",
                                      "busybox", "sleep", "30"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    ids = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(len(i) == 64 for i in ids) and len(set(ids)) == 8
    running = kade("ps", "--format", "{{.Names}}").stdout.split()
    assert sorted(n for n in running if n.startswith("cc")) == sorted(f"cc{i}" for i in range(8))
    rms = [subprocess.Popen(KADE + ["--root", kade.root, "rm", "-f", f"cc{i}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
           for i in range(8)]
    assert all(p.wait(timeout=120) == 0 for p in rms)
    assert kade("ps", "-aq", "--filter", "name=cc").stdout == ""
    assert kade("system", "check").stdout.strip() == "store is consistent"


def test_prune_filters_narrow_what_goes(kade):
    """until= and label= / label!= as docker reads them; a bad filter removes nothing."""
    kade("create", "--name", "pk", "--label", "keep=yes", "busybox", "true")
    kade("create", "--name", "pg", "busybox", "true")
    for bad, message in ((["until=abc"], 'failed to parse value as time or duration: "abc"'),
                         (["bogus=1"], 'invalid filter "bogus"')):
        p = kade("container", "prune", "-f", "--filter", *bad, check=False)
        assert (p.returncode, p.stderr) == (1, f"Error: {message}\n")
    names = ["ps", "-a", "--format", "{{.Names}}", "--filter", "name=p"]
    assert sorted(kade(*names).stdout.split()) == ["pg", "pk"]
    kade("container", "prune", "-f", "--filter", "until=1h")  # both are newer than that
    assert sorted(kade(*names).stdout.split()) == ["pg", "pk"]
    kade("container", "prune", "-f", "--filter", "label!=keep")
    assert kade(*names).stdout.split() == ["pk"]
    kade("container", "prune", "-f", "--filter", "label=keep=yes")
    assert kade(*names).stdout.split() == []
    kade("volume", "create", "--label", "team=a", "va")
    kade("volume", "create", "vb")
    kade("volume", "prune", "-a", "-f", "--filter", "label=team=b")
    assert kade("volume", "ls", "-q").stdout.split() == ["va", "vb"]
    kade("volume", "prune", "-a", "-f", "--filter", "label=team=a")
    assert kade("volume", "ls", "-q").stdout.split() == ["vb"]
    kade("volume", "rm", "vb")
    p = kade("system", "prune", "-f", "--volumes", "--filter", "until=1h", check=False)
    assert (p.returncode, p.stderr) == (
        1, "Error: the until filter is not supported with --volumes\n")
