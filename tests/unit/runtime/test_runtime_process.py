"""Spec to process config, exec lookup, the handshake's messages, the start fifo (no root)."""

from __future__ import annotations

import errno
import os
import resource
import stat

import pytest
from runtime_fakes import RecordingSyscalls

from kade import errors
from kade.runtime import linux as L
from kade.runtime import process

PATH = "/usr/sbin:/usr/bin:/bin"


def _spec(tmp_path, **extra):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    spec = {"root": {"path": "rootfs"},
            "process": {"args": ["sh"], "env": [f"PATH={PATH}"], "cwd": "/"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}}
    spec.update(extra)
    return spec


def test_init_config_from_a_minimal_spec(tmp_path):
    cfg = process.init_config(_spec(tmp_path, hostname="box"), str(tmp_path))
    assert cfg.process.args == ("sh",)
    assert cfg.process.env == {"PATH": PATH}
    assert cfg.namespaces == {"pid": None, "mount": None, "uts": None}
    assert cfg.hostname == "box"
    assert cfg.rootfs.root == str(tmp_path / "rootfs")


@pytest.mark.parametrize(("namespaces", "error", "match"), [
    ([{"type": "mount"}, {"type": "mount"}], errors.InvalidArgument, "listed twice"),
    ([{"type": "mount"}, {"type": "bogus"}], errors.InvalidArgument, '"bogus" is not valid'),
    ([{"type": "mount"}, {"type": "user"}], errors.InvalidArgument, "needs linux.uidMappings"),
])
def test_namespace_lists_that_are_refused(tmp_path, namespaces, error, match):
    with pytest.raises(error, match=match):
        process.init_config(_spec(tmp_path, linux={"namespaces": namespaces}), str(tmp_path))


def test_a_namespace_not_listed_is_the_callers_mount_included(tmp_path):
    cfg = process.init_config(_spec(tmp_path, linux={"namespaces": [{"type": "pid"}]}),
                              str(tmp_path))
    assert cfg.namespaces == {"pid": None}
    assert not cfg.rootfs.mount_ns


@pytest.mark.parametrize(("linux", "match"), [
    ({"maskedPaths": ["/proc/kcore"]}, "need a mount namespace"),
    ({"readonlyPaths": ["/proc/sys"]}, "need a mount namespace"),
    ({"rootfsPropagation": "shared"}, "rootfsPropagation needs a mount namespace"),
])
def test_what_only_a_mount_namespace_can_do_is_refused_without_one(tmp_path, linux, match):
    spec = _spec(tmp_path, linux={"namespaces": [{"type": "pid"}], **linux})
    with pytest.raises(errors.InvalidArgument, match=match):
        process.init_config(spec, str(tmp_path))


def test_joining_a_mount_namespace_by_path(tmp_path):
    spec = _spec(tmp_path, linux={"namespaces": [{"type": "mount", "path": "/proc/1/ns/mnt"}]})
    cfg = process.init_config(spec, str(tmp_path))
    assert cfg.namespaces == {"mount": "/proc/1/ns/mnt"}
    assert cfg.rootfs.mount_ns


USERNS = [{"type": "mount"}, {"type": "user"}]
MAPS = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 10},
                        {"containerID": 10, "hostID": 300000, "size": 1}]}


def test_user_namespace_mappings_become_the_kernels_text(tmp_path):
    cfg = process.init_config(_spec(tmp_path, linux={"namespaces": USERNS, **MAPS}),
                              str(tmp_path))
    assert cfg.namespaces["user"] is None
    assert cfg.id_maps == ("0 100000 65536\n", "0 200000 10\n10 300000 1\n")
    assert process.map_id(cfg.id_maps[1], 10) == 300000
    assert process.map_id(cfg.id_maps[1], 11) is None


@pytest.mark.parametrize(("linux", "match"), [
    ({"namespaces": [{"type": "mount"}], **MAPS}, "need a user namespace"),
    ({"namespaces": USERNS, "uidMappings": MAPS["uidMappings"]}, "needs linux.uidMappings"),
    ({"namespaces": USERNS, "uidMappings": [{"containerID": 0, "hostID": 1}],
      "gidMappings": MAPS["gidMappings"]}, "uidMappings entry"),
    ({"namespaces": USERNS, "uidMappings": [{"containerID": 0, "hostID": 1, "size": 0}],
      "gidMappings": MAPS["gidMappings"]}, "uidMappings entry"),
    ({"namespaces": [{"type": "mount"}], "timeOffsets": {"monotonic": {"secs": 1}}},
     "needs a new time namespace"),
    ({"namespaces": [{"type": "mount"}, {"type": "time"}], "timeOffsets": {"realtime": {}}},
     'clock "realtime" is not valid'),
])
def test_user_and_time_settings_that_are_refused(tmp_path, linux, match):
    with pytest.raises(errors.InvalidArgument, match=match):
        process.init_config(_spec(tmp_path, linux=linux), str(tmp_path))


def test_joining_a_user_namespace_needs_no_mappings(tmp_path):
    linux = {"namespaces": [{"type": "mount"}, {"type": "user", "path": "/proc/1/ns/user"}]}
    cfg = process.init_config(_spec(tmp_path, linux=linux), str(tmp_path))
    assert cfg.namespaces["user"] == "/proc/1/ns/user"


def test_time_offsets_become_the_kernels_text(tmp_path):
    linux = {"namespaces": [{"type": "mount"}, {"type": "time"}],
             "timeOffsets": {"monotonic": {"secs": 86400}, "boottime": {"secs": 1,
                                                                        "nanosecs": 5}}}
    cfg = process.init_config(_spec(tmp_path, linux=linux), str(tmp_path))
    assert cfg.time_offsets == "1 86400 0\n7 1 5\n"


def test_hooks_are_parsed_into_the_init_config(tmp_path):
    spec = _spec(tmp_path, hooks={
        "prestart": [], "createRuntime": [{"path": "/bin/true"}],
        "createContainer": [{"path": "/bin/echo", "args": ["echo", "hi"], "env": ["A=1"],
                             "timeout": 5}]})
    assert process.init_config(spec, str(tmp_path)).runtime_hooks
    (hook,) = process.parse_hooks(spec)["createContainer"]
    assert (hook.path, hook.args, hook.env, hook.timeout) == ("/bin/echo", ("echo", "hi"),
                                                              ("A=1",), 5)
    assert not process.init_config(_spec(tmp_path, hooks={"prestart": []}),
                                   str(tmp_path)).runtime_hooks


def test_hostname_needs_a_uts_namespace(tmp_path):
    spec = _spec(tmp_path, hostname="box", linux={"namespaces": [{"type": "mount"}]})
    with pytest.raises(errors.InvalidArgument, match="uts namespace"):
        process.init_config(spec, str(tmp_path))


def test_terminal_needs_a_console(tmp_path):
    spec = _spec(tmp_path)
    spec["process"]["terminal"] = True
    with pytest.raises(errors.InvalidArgument, match="no console"):
        process.init_config(spec, str(tmp_path))
    assert process.init_config(spec, str(tmp_path), console=True).process.terminal


def test_process_config_reads_the_user_and_checks_args_and_cwd():
    cfg = process.process_config({"args": ["id"], "cwd": "/w", "noNewPrivileges": True,
                                  "user": {"uid": 5, "gid": 6, "additionalGids": [7],
                                           "umask": 0o077}, "oomScoreAdj": 100})
    assert (cfg.uid, cfg.gid, cfg.additional_gids, cfg.umask) == (5, 6, (7,), 0o077)
    assert cfg.no_new_privileges and cfg.oom_score_adj == 100
    with pytest.raises(errors.InvalidArgument, match="must not be empty"):
        process.process_config({"args": []})
    with pytest.raises(errors.InvalidArgument, match="not an absolute path"):
        process.process_config({"args": ["x"], "cwd": "rel"})


def test_env_later_entries_win_and_junk_is_dropped():
    assert process.parse_env(["A=1", "B=x=y", "junk", "A=2"]) == {"A": "2", "B": "x=y"}


def test_rlimits_never_ask_above_the_callers_hard_limit():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    which, soft, got_hard = process.parse_rlimit(
        {"type": "RLIMIT_NOFILE", "soft": 2**64 - 1, "hard": 2**64 - 1})
    assert (which, soft, got_hard) == (resource.RLIMIT_NOFILE, hard, hard)
    assert process.parse_rlimit({"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5})[1:] == (5, 5)
    with pytest.raises(errors.InvalidArgument, match="RLIMIT_BOGUS"):
        process.parse_rlimit({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1})


def test_lookup_walks_path_like_runc(tmp_path):
    bin_dir, other = tmp_path / "bin", tmp_path / "other"
    bin_dir.mkdir()
    other.mkdir()
    (other / "tool").write_text("")                  # not executable: skipped
    (bin_dir / "tool").write_text("")
    (bin_dir / "tool").chmod(0o755)
    assert process.lookup("tool", f"{other}:{bin_dir}") == f"{bin_dir}/tool"
    with pytest.raises(errors.CommandNotFound,
                       match=r'^exec: "nope": executable file not found in \$PATH$'):
        process.lookup("nope", str(bin_dir))
    with pytest.raises(errors.CommandNotFound):
        process.lookup("tool", None)                  # no PATH: nothing is found


def test_lookup_of_a_path_checks_the_file(tmp_path):
    with pytest.raises(errors.CommandNotInvocable, match=r'^exec: "/etc": permission denied$'):
        process.lookup("/etc", PATH)
    with pytest.raises(errors.CommandNotFound,
                       match=r'^exec: "/nope": stat /nope: no such file or directory$'):
        process.lookup("/nope", PATH)
    script = tmp_path / "script"
    script.write_text("")
    with pytest.raises(errors.CommandNotInvocable):
        process.lookup(str(script), PATH)


@pytest.mark.parametrize(("code", "cls"), [
    (2, errors.CommandNotFound), (13, errors.CommandNotInvocable),
    (8, errors.CommandNotInvocable), (7, errors.FailedPrecondition)])
def test_exec_errors_map_to_docker_classes(code, cls):
    err = process.exec_error("prog", OSError(code, os.strerror(code)))
    assert type(err) is cls
    assert str(err) == f'exec: "prog": {os.strerror(code).lower()}'


def test_a_reported_error_comes_back_as_the_same_class():
    r, w = os.pipe()
    process._report(w, errors.CommandNotFound('exec: "x": not found'))
    process._report(w, ValueError("boom"))
    os.close(w)
    first, second = os.read(r, 4096).split(b"KadeError\n")
    os.close(r)
    with pytest.raises(errors.CommandNotFound, match='exec: "x": not found'):
        process._raise_reported(first)
    with pytest.raises(errors.KadeError, match="container init failed: ValueError: boom"):
        process._raise_reported(b"KadeError\n" + second)


def test_fd_targets():
    assert process.fd_targets(None) == {}
    assert process.fd_targets((5, None, 7), [9, 10]) == {0: 5, 2: 7, 3: 9, 4: 10}


def test_enter_namespaces_joins_by_path_then_unshares_the_rest(tmp_path):
    ns = tmp_path / "netns"
    ns.write_text("")
    sc = RecordingSyscalls()
    process.enter_namespaces(sc, {"pid": None, "network": str(ns), "mount": None,
                                  "uts": None, "cgroup": None})
    assert [c[0] for c in sc.calls] == ["setns", "unshare"]
    assert sc.calls[0][2] == L.CLONE_NEWNET
    assert sc.calls[1] == ("unshare", L.CLONE_NEWNS | L.CLONE_NEWUTS | L.CLONE_NEWCGROUP)


def test_fork_into_restores_the_callers_pid_namespace():
    sc = RecordingSyscalls()
    pid = process.fork_into(sc, process.NEW)
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert [c[0] for c in sc.calls] == ["unshare", "setns"]
    assert sc.calls[1][2] == L.CLONE_NEWPID
    assert os.readlink(f"/proc/self/fd/{sc.calls[1][1]}") == os.readlink("/proc/self/ns/pid")


def test_arrange_fds_places_targets_and_closes_the_rest():
    r, w = os.pipe()
    keep_r, keep_w = os.pipe()
    stray = os.open(os.devnull, os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        try:
            (kept,) = process._arrange_fds({1: w, 3: w}, (keep_w,))
            open_fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
            cloexec = fcntl_cloexec(kept)
            os.write(kept, f"{open_fds} {kept} {cloexec}".encode())
        finally:
            os._exit(0)
    os.close(w)
    os.close(keep_w)
    os.close(stray)
    os.waitpid(pid, 0)
    report = os.read(keep_r, 4096).decode()
    os.close(r)
    os.close(keep_r)
    fds, kept, cloexec = report.rsplit(" ", 2)
    assert int(kept) >= 4 and cloexec == "True"
    opened = set(eval(fds))  # noqa: S307 - our own list repr
    assert {0, 1, 2, 3, int(kept)} <= opened
    assert len(opened - {0, 1, 2, 3, int(kept)}) <= 1      # listdir's own fd


def fcntl_cloexec(fd: int) -> bool:
    import fcntl

    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)


def _fake_init(fifo: str, action: str) -> int:
    """Does with the fifo what the real init does: holds it by an O_PATH fd from before
    start, reopens it for writing, then "execs" (closes it) or writes an error."""
    held = os.open(fifo, os.O_PATH)
    pid = os.fork()
    if pid == 0:
        try:
            if action != "die":
                fd = os.open(f"/proc/self/fd/{held}", os.O_WRONLY)
                if action == "fail":
                    os.write(fd, b'CommandNotInvocable\nexec: "x": exec format error')
                elif action == "trampoline-fail":          # its record: ENOEXEC, tag 0
                    os.write(fd, (errno.ENOEXEC << 8).to_bytes(4, "little"))
        finally:
            os._exit(0)
    os.close(held)
    return pid


@pytest.mark.parametrize("action", ["exec", "fail", "trampoline-fail", "die"])
def test_release_reports_what_the_init_did(tmp_path, action):
    fifo = str(tmp_path / "exec.fifo")
    os.mkfifo(fifo)
    pid = _fake_init(fifo, action)
    pidfd = os.pidfd_open(pid)
    try:
        if action == "exec":
            process.release(fifo, pidfd)
        elif action == "fail":
            with pytest.raises(errors.CommandNotInvocable, match="exec format error"):
                process.release(fifo, pidfd)
        elif action == "trampoline-fail":
            with pytest.raises(errors.CommandNotInvocable, match='exec: "x": exec format'):
                process.release(fifo, pidfd, command=lambda: "x")
        else:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            with pytest.raises(errors.FailedPrecondition, match="exited before"):
                process.release(fifo, pidfd)
    finally:
        os.close(pidfd)
        os.waitpid(pid, 0)
    assert not os.path.exists(fifo)
    with pytest.raises(errors.Conflict, match="already started"):
        process.release(fifo, -1)


def test_child_code_never_imports_lazily():
    """After pivot_root the host's Python library is gone: everything is imported."""
    import inspect

    source = inspect.getsource(process)
    body = source.split("# -- the child's side", 1)[1]
    assert "import " not in body.replace("imported", "")
    assert stat.S_ISREG(os.stat(process.__file__).st_mode)
