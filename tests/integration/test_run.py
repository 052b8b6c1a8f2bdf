"""`kade run` as a docker user drives it: output, exit codes, isolation, flags."""

import os
import time

import pytest


def test_run_prints_output_and_removes_with_rm(kade):
    p = kade("run", "--rm", "busybox", "echo", "hello")
    assert p.stdout == "hello\n"
    assert kade("ps", "-aq").stdout == ""


@pytest.mark.parametrize("cmd,code", [(["sh", "-c", "exit 3"], 3), (["nosuch"], 127),
                                      (["/etc"], 126)])
def test_exit_codes_like_docker(kade, cmd, code):
    p = kade("run", "--rm", "busybox", *cmd, check=False)
    assert p.returncode == code
    if code >= 126:
        assert "nosuch" in p.stderr or "/etc" in p.stderr
        assert p.stderr.count("\n") == 1  # one clear line


@pytest.mark.parametrize("args", [
    ["--pull", "never", "busybx"],
    ["127.0.0.1:1/busybx"],  # pulled from a closed loopback port: no traffic leaves the host
])
def test_unknown_image_fails_125_and_leaves_nothing(kade, args):
    p = kade("run", "--rm", *args, "true", check=False)
    assert p.returncode == 125
    assert "busybx" in p.stderr
    assert kade("ps", "-aq").stdout == ""


def test_unknown_flag_is_125(kade):
    p = kade("run", "--bogus", "busybox", check=False)
    assert p.returncode == 125
    assert "unknown flag: --bogus" in p.stderr


@pytest.mark.parametrize("flags,value", [
    (["-e", "=x"], "=x"),
    (["--dns", "notanip"], "notanip"),
    (["--add-host", "nocolon"], "nocolon"),
    (["--add-host", "db:notanip"], "notanip"),
    (["--stop-signal", "SIGFOO"], "SIGFOO"),
    (["-m", "1k"], "Minimum memory limit allowed is 6MB"),  # docker's words, no value
    (["-m", "10m", "--memory-swap", "5m"], "memoryswap limit should be larger"),
    (["--memory-swap", "50m"], "always set the Memory limit"),
    (["--cpus", "0.001"], "Range of CPUs is from 0.01"),
    (["--mount", "type=volume,src=v,dst=/d,foo=bar"], "unexpected key 'foo' in 'foo=bar'"),
    (["-w", "relative"], "the working directory 'relative' is invalid"),
])
def test_bad_option_values_fail_125_before_any_container(kade, flags, value):
    p = kade("run", *flags, "busybox", "true", check=False)
    assert p.returncode == 125
    assert value in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert kade("ps", "-aq").stdout == ""


def test_a_container_that_fails_to_start_stays_created(kade):
    """As in docker: the runtime's error is kept, the status is Created, not Exited."""
    p = kade("run", "--name", "nostart", "-w", "/etc/passwd", "busybox", "true", check=False)
    assert p.returncode == 125
    assert "/etc/passwd" in p.stderr
    state = kade("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "nostart").stdout
    assert state.split() == ["created", "128"]
    assert "Created" in kade("ps", "-a", "--filter", "name=nostart",
                             "--format", "{{.Status}}").stdout
    kade("rm", "nostart")


def test_container_is_isolated(kade):
    out = kade("run", "--rm", "--hostname", "boxy", "busybox", "sh", "-c",
               "echo $$; hostname; ls /proc | grep -c '^[0-9]'; cat /proc/self/status | "
               "grep CapEff").stdout.split("\n")
    assert out[0] == "1"  # pid 1 in its own pid namespace
    assert out[1] == "boxy"
    assert int(out[2]) <= 3  # sees only its own processes
    assert out[3].split()[1] == "00000000a80425fb"  # docker's default capabilities


def test_the_default_devices_work(kade):
    # docker's device rules allow null, zero, full, random, urandom, tty and console
    out = kade("run", "--rm", "busybox", "sh", "-c",
               "head -c1 /dev/zero | wc -c; head -c1 /dev/urandom | wc -c; "
               "head -c1 /dev/random | wc -c; head -c1 /dev/full | wc -c; "
               "echo x > /dev/null && echo null; echo x > /dev/full || echo full-is-full"
               ).stdout.split()
    assert out == ["1", "1", "1", "1", "null", "full-is-full"]


def test_a_terminal_is_made_in_the_containers_own_devpts(kade):
    """As with docker (runc): `tty` is /dev/pts/0 and /dev/console is that pty; an exec
    gets the next one; programs in the container can open ptys of their own."""
    assert kade("run", "--rm", "-t", "busybox", "sh", "-c",
                "tty; stat -c %t,%T /dev/console").stdout.split() == ["/dev/pts/0", "88,0"]
    kade("run", "-d", "-t", "--name", "ptys", "busybox", "sleep", "30")
    assert kade("exec", "-t", "ptys", "tty").stdout.strip() == "/dev/pts/1"
    kade("rm", "-f", "ptys")
    # ...and, as under runc, may make a node for one (any node: see tests/security)
    out = kade("run", "--rm", "busybox", "sh", "-c", "exec 3<>/dev/ptmx && ls /dev/pts; "
               "mknod /tmp/pts c 136 0 && echo made")
    assert out.stdout.split() == ["0", "ptmx", "made"]


MOUNT_PROBE = "mkdir -p /m; mount -t tmpfs none /m 2>/dev/null && echo MOUNTED; "
MODULE_PROBE = ("echo x > /tmp/x.ko; insmod /tmp/x.ko 2>&1 | grep -q 'not permitted' || "
                "echo MODULE; ")


def test_container_cannot_touch_the_host(kade):
    script = (MOUNT_PROBE + MODULE_PROBE +
              "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo PROCSYS; "
              "mknod /tmp/sda b 8 0 2>/dev/null && cat /tmp/sda >/dev/null 2>&1 && echo DEV; "
              "hostname evil 2>/dev/null && echo HOSTNAME; "
              "date -s 2000-01-01 >/dev/null 2>&1; [ $(date +%Y) = 2000 ] && echo CLOCK; "
              "echo x > /sys/kernel/uevent_helper 2>/dev/null && echo SYS; echo done")
    out = kade("run", "--rm", "busybox", "sh", "-c", script).stdout
    assert out.strip() == "done", out


def test_the_isolation_probes_can_fail(kade):
    """Under --privileged the mount and module probes get through, so the test above
    could see them. Only probes that stay inside the container run here: a privileged
    container really can set the host's clock or write the host's /sys."""
    out = kade("run", "--rm", "--privileged", "busybox", "sh", "-c",
               MOUNT_PROBE + MODULE_PROBE + "echo done").stdout
    assert out.split() == ["MOUNTED", "MODULE", "done"]


def test_no_mount_or_cgroup_left_after_run(kade):
    before = open("/proc/self/mountinfo").read().count(kade.root)
    p = kade("run", "--name", "leftover-check", "busybox", "true")
    cid = kade("inspect", "-f", "{{.Id}}", "leftover-check").stdout.strip()
    kade("rm", "leftover-check")
    assert open("/proc/self/mountinfo").read().count(kade.root) == before
    for base in ("/sys/fs/cgroup/memory/kade", "/sys/fs/cgroup/pids/kade",
                 "/sys/fs/cgroup/kade"):
        assert not os.path.exists(os.path.join(base, cid))
    del p


def test_detached_container_outlives_the_cli_and_logs(kade):
    cid = kade("run", "-d", "--name", "det", "busybox", "sh", "-c",
               "echo out; echo err >&2; sleep 30").stdout.strip()
    assert len(cid) == 64
    assert kade("inspect", "-f", "{{.State.Status}}", "det").stdout.strip() == "running"
    deadline = time.time() + 5
    while "out" not in kade("logs", "det").stdout and time.time() < deadline:
        time.sleep(0.05)
    logs = kade("logs", "det")
    assert logs.stdout == "out\n" and logs.stderr == "err\n"
    assert "det" in kade("ps", "--format", "{{.Names}}").stdout
    kade("stop", "-t", "1", "det")
    state = kade("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "det").stdout
    assert state.split()[0] == "exited"
    kade("rm", "det")


def test_rm_running_container_needs_force(kade):
    kade("run", "-d", "--name", "busy", "busybox", "sleep", "30")
    p = kade("rm", "busy", check=False)
    assert p.returncode == 1 and "stop the container" in p.stderr
    kade("rm", "-f", "busy")
    assert "busy" not in kade("ps", "-a", "--format", "{{.Names}}").stdout


def test_name_in_use_is_refused(kade):
    kade("create", "--name", "twice", "busybox", "true")
    p = kade("create", "--name", "twice", "busybox", "true", check=False)
    assert p.returncode == 125 and "already in use" in p.stderr
    kade("rm", "twice")


def test_exec_joins_the_container(kade):
    kade("run", "-d", "--name", "ex", "busybox", "sleep", "30")
    p = kade("exec", "-e", "X=1", "ex", "sh", "-c", "echo $X; cat /proc/1/comm")
    assert p.stdout.split() == ["1", "sleep"]
    assert kade("exec", "ex", "nosuch", check=False).returncode == 127
    bad = kade("exec", "-e", "=x", "ex", "true", check=False)
    assert (bad.returncode, bad.stderr) == (1, "Error: invalid environment variable: =x\n")
    kade("rm", "-f", "ex")


def test_env_workdir_user_entrypoint(kade):
    out = kade("run", "--rm", "-e", "A=b", "-w", "/tmp/new", "-u", "nobody", "busybox",
               "sh", "-c", "echo $A; pwd; id -u").stdout.split()
    assert out == ["b", "/tmp/new", "65534"]
    out = kade("run", "--rm", "--entrypoint", "echo", "busybox", "x").stdout
    assert out == "x\n"


def test_read_only_rootfs_and_tmpfs(kade):
    p = kade("run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
             "touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmp")
    assert p.stdout.split() == ["ro", "tmp"]


def test_named_volume_persists(kade):
    kade("run", "--rm", "-v", "vdata:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert kade("run", "--rm", "-v", "vdata:/data", "busybox", "cat", "/data/f").stdout == \
        "kept\n"
    assert "vdata" in kade("volume", "ls", "-q").stdout
    kade("volume", "rm", "vdata")


def test_named_volume_copies_image_content(kade):
    out = kade("run", "--rm", "-v", "etcvol:/etc", "busybox", "ls", "/etc").stdout
    assert "passwd" in out.split()
    kade("volume", "rm", "etcvol")


def test_bind_mount(kade, tmp_path):
    (tmp_path / "in.txt").write_text("from host\n")
    out = kade("run", "--rm", "-v", f"{tmp_path}:/h:ro", "busybox", "sh", "-c",
               "cat /h/in.txt; touch /h/x 2>/dev/null || echo ro").stdout
    assert out == "from host\nro\n"


def test_memory_and_pids_limits(kade):
    out = kade("run", "--rm", "-m", "64m", "--pids-limit", "20", "busybox", "sh", "-c",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
               "cat /sys/fs/cgroup/memory.max").stdout.strip()
    assert out == str(64 * 1024 * 1024)


def test_restart_on_failure(kade):
    kade("run", "-d", "--name", "rs", "--restart", "on-failure:2", "busybox", "sh", "-c",
         "exit 1")
    deadline = time.time() + 10
    while time.time() < deadline:
        st = kade("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "rs").stdout.split()
        if st == ["exited", "2"]:
            break
        time.sleep(0.1)
    assert st == ["exited", "2"]
    # the monitor's records survive the CLI that started it (no lost SQLite writes)
    assert kade("inspect", "-f", "{{.State.Error}}", "rs").stdout.strip() == ""
    kade("rm", "rs")


def test_restart_always_survives_a_kill_of_the_process(kade):
    kade("run", "-d", "--name", "ra", "--restart", "always", "busybox", "sleep", "30")
    first = kade("inspect", "-f", "{{.State.Pid}}", "ra").stdout.strip()
    os.kill(int(first), 9)
    deadline = time.time() + 10
    while time.time() < deadline:
        st = kade("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "ra").stdout.split()
        if st[0] == "running" and st[1] != first:
            break
        time.sleep(0.1)
    assert st[0] == "running" and st[1] != first
    kade("stop", "-t", "1", "ra")  # a manual stop is not restarted
    time.sleep(0.5)
    assert kade("inspect", "-f", "{{.State.Status}}", "ra").stdout.strip() == "exited"
    kade("rm", "ra")


def test_pause_unpause(kade):
    kade("run", "-d", "--name", "pz", "busybox", "sleep", "30")
    kade("pause", "pz")
    assert kade("inspect", "-f", "{{.State.Status}}", "pz").stdout.strip() == "paused"
    kade("unpause", "pz")
    assert kade("inspect", "-f", "{{.State.Status}}", "pz").stdout.strip() == "running"
    kade("rm", "-f", "pz")


def test_health_checks_run_and_show_in_ps(kade):
    kade("run", "-d", "--name", "hc", "--health-cmd", "test -e /tmp/ok",
         "--health-interval", "0.2s", "--health-retries", "2", "busybox", "sleep", "30")
    deadline = time.time() + 10
    status = ""
    while time.time() < deadline and status != "unhealthy":
        status = kade("inspect", "-f", "{{.State.Health.Status}}", "hc").stdout.strip()
        time.sleep(0.1)
    assert status == "unhealthy"
    assert "(unhealthy)" in kade("ps", "--format", "{{.Status}}", "-f", "name=hc").stdout
    kade("exec", "hc", "touch", "/tmp/ok")
    while time.time() < deadline and status != "healthy":
        status = kade("inspect", "-f", "{{.State.Health.Status}}", "hc").stdout.strip()
        time.sleep(0.1)
    assert status == "healthy"
    log = kade("inspect", "-f", "{{json .State.Health.Log}}", "hc").stdout
    assert '"ExitCode":0' in log.replace(" ", "")
    kade("rm", "-f", "hc")


RUNC = "/usr/sbin/runc"
RUNTIMES = ["kade", pytest.param(RUNC, marks=pytest.mark.skipif(
    not os.path.exists(RUNC), reason="needs Debian's runc (apt-get install runc)"))]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_same_container_under_either_runtime(kade, runtime):
    out = kade("run", "--rm", "--runtime", runtime, "--hostname", "same", "-e", "A=1",
               "busybox", "sh", "-c",
               "echo $$ $A; hostname; grep CapEff /proc/self/status; "
               "touch /proc/sys/x 2>/dev/null || echo ro-sys").stdout.split("\n")
    assert out[:4] == ["1 1", "same", "CapEff:\t00000000a80425fb", "ro-sys"]
    assert kade("run", "--rm", "--runtime", runtime, "busybox", "sh", "-c", "exit 7",
                check=False).returncode == 7


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_detached_lifecycle_under_either_runtime(kade, runtime):
    kade("run", "-d", "--name", "either", "--runtime", runtime, "-m", "32m", "busybox",
         "sleep", "30")
    assert kade("exec", "either", "cat", "/proc/1/comm").stdout == "sleep\n"
    kade("pause", "either")
    assert kade("inspect", "-f", "{{.State.Status}}", "either").stdout.strip() == "paused"
    kade("unpause", "either")
    kade("kill", "either")
    assert kade("wait", "either").stdout.strip() == "137"
    kade("rm", "either")
    assert kade.root not in open("/proc/self/mountinfo").read()


def test_monitor_stop_returns_once_the_supervisor_has_gone(kade):
    """`system monitor stop` (after upgrading kade) returns once the supervisor has
    exited and freed the root's lock, so the very next command starts a new one, which
    runs the new code."""
    import fcntl
    kade("run", "--rm", "busybox", "true")
    kade("system", "monitor", "stop")
    fd = os.open(os.path.join(kade.root, "monitor.lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while it lives
    finally:
        os.close(fd)
    kade("run", "--rm", "busybox", "true")
    with open(os.path.join(kade.root, "monitor.log")) as f:
        events = [line.split(None, 2)[2] for line in f.read().splitlines()]
    served = [e.split(":")[0] for e in events if e.endswith(": serving")]
    assert len(served) >= 2 and served[-1] != served[-2], events
