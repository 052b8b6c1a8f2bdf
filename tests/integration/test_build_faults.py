"""`kade build` on bad input and when interrupted: the message a user reads, the
exit code, and a store left as it was (no tagged image, no container, no mount).

Missing images use 127.0.0.1:1, which refuses at once: nothing is pulled.
"""

import os
import signal
import subprocess

from build_helpers import KADE, build, run, steps, write_tree


def _mounts_under(root: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if f" {root}/" in line or f" {root} " in line]


def _assert_nothing_left(kade, tag: str | None = None) -> None:
    if tag:
        assert kade("image", "inspect", tag, check=False).returncode != 0
    assert kade("ps", "-aq").stdout == ""
    assert _mounts_under(kade.root) == []


def test_dockerfile_errors_name_file_and_line(kade, tmp_path):
    cases = {
        "FROM busybox\nRUN true\nEXPOSE\n": "Dockerfile:3: EXPOSE requires at least one argument",
        "FROM busybox\n\nFOO bar\n": "Dockerfile:3: unknown instruction: FOO",
        "FROM busybox\nCOPY --foo=1 a /b\n": "Dockerfile:2: unknown flag: foo",
        "FROM busybox\nRUN <<EOF\necho\n": "Dockerfile:2: unterminated heredoc",
        "FROM busybox\nRUN true\nCOPY --from=5 /x /y\n": "Dockerfile:3: invalid from flag value 5",
    }
    for i, (text, message) in enumerate(cases.items()):
        p = build(kade, tmp_path / str(i), "-t", "bad:1", dockerfile=text, check=False)
        assert p.returncode == 1 and message in p.stderr, (text, p.stderr)
        assert "#2 [2/" not in p.stderr  # refused before any step ran
    ctx = write_tree(tmp_path / "named", {"Build.df": "FROM busybox\nWORKDIR\n"})
    p = kade("build", "-f", os.path.join(ctx, "Build.df"), ctx, check=False)
    assert p.returncode == 1 and "Build.df:2: WORKDIR requires exactly one argument" in p.stderr
    _assert_nothing_left(kade, "bad:1")


def test_bad_context_or_dockerfile_path(kade, tmp_path):
    write_tree(tmp_path, {"file": "not a directory\n"})
    cases = {(str(tmp_path / "file"),): "context must be a directory: " + str(tmp_path / "file"),
             (str(tmp_path / "nodir"),): f'path "{tmp_path / "nodir"}" not found',
             ("-f", str(tmp_path / "nope"), str(tmp_path)): "nope: no such file or directory",
             ("git@example.com:x/y.git",): "remote contexts (git, URLs) are not supported"}
    for args, message in cases.items():
        p = kade("build", *args, check=False)
        assert p.returncode == 1 and "unable to prepare context" in p.stderr, p.stderr
        assert message in p.stderr, p.stderr


def test_failing_run_shows_output_and_code_and_leaves_nothing(kade, tmp_path):
    df = """\
FROM busybox
RUN echo step one > /one
RUN echo about to fail; echo on stderr >&2; exit 7
RUN echo never
"""
    p = build(kade, tmp_path, "-t", "fails:1", dockerfile=df, check=False)
    # docker 20.10's builder: the step's code is the build's, and its last word
    assert p.returncode == 7 and "Traceback" not in p.stderr
    assert p.stderr.splitlines()[-1] == ("The command '/bin/sh -c echo about to fail; "
                                         "echo on stderr >&2; exit 7' returned a non-zero code: 7")
    assert "about to fail" in p.stderr and "on stderr" in p.stderr
    assert "exit code: 7" in p.stderr and "never" not in p.stderr.split("exit code: 7")[1]
    assert steps(p.stderr)[-1] == ("RUN echo about to fail; echo on stderr >&2; exit 7", "ERROR")
    _assert_nothing_left(kade, "fails:1")
    # -q hides the log, but not a failed step's output
    p = build(kade, tmp_path, "-q", "-t", "fails:1", check=False)
    assert p.returncode == 7 and p.stdout == ""
    assert "about to fail" in p.stderr and "exit code: 7" in p.stderr
    _assert_nothing_left(kade, "fails:1")
    # the terminal view boxes the failed step's output and names the error once
    p = kade("build", "--progress=tty", "-t", "fails:1", str(tmp_path), check=False)
    title = "RUN echo about to fail; echo on stderr >&2; exit 7"
    assert f" => ERROR [3/4] {title}" in p.stderr
    assert f"------\n > [3/4] {title}:\nabout to fail\n" in p.stderr
    assert p.returncode == 7 and p.stderr.count("returned a non-zero code: 7") == 1


def test_copy_cannot_leave_the_context(kade, tmp_path):
    (tmp_path / "outside.txt").write_text("outside\n")
    ctx = tmp_path / "ctx"
    write_tree(ctx, {"in.txt": "in\n"})
    os.symlink("/etc/passwd", ctx / "abs-link")
    os.symlink("../outside.txt", ctx / "rel-link")
    for src in ("../outside.txt", "abs-link", "rel-link"):
        p = build(kade, ctx, "-t", "escape:1", dockerfile=f"FROM busybox\nCOPY {src} /got\n",
                  check=False)
        assert p.returncode != 0, src
        assert "forbidden path outside the build context" in p.stderr, p.stderr
    _assert_nothing_left(kade, "escape:1")


def test_missing_base_or_from_image_is_named(kade, tmp_path):
    p = build(kade, tmp_path / "a", dockerfile="FROM 127.0.0.1:1/nope\n", check=False)
    assert p.returncode != 0 and "127.0.0.1:1/nope" in p.stderr
    p = build(kade, tmp_path / "b", dockerfile="FROM busybox\nCOPY --from=127.0.0.1:1/nope /x /y\n",
              check=False)
    assert p.returncode != 0 and "127.0.0.1:1/nope" in p.stderr
    p = build(kade, tmp_path / "c", dockerfile="FROM busybox AS one\nFROM one\n"
              "COPY --from=two /x /y\n", check=False)
    assert p.returncode != 0 and "two" in p.stderr


LONG = """\
FROM busybox
COPY f.txt /f.txt
RUN echo first > /first
RUN echo started; sleep 30
"""


def _start_long_build(kade, ctx, tag: str, dockerfile: str = LONG) -> subprocess.Popen:
    """A build in its long RUN: returns once the RUN's process has printed."""
    write_tree(ctx, {"Dockerfile": dockerfile, "f.txt": "f\n"})
    proc = subprocess.Popen(KADE + ["--root", kade.root, "build", "--progress=plain",
                                    "-t", tag, str(ctx)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("#") and line.rstrip().endswith(" started"):
            return proc
    proc.wait()
    raise AssertionError("the build ended before its long RUN:\n" + "".join(seen))


def test_kill_9_leaves_a_consistent_store_and_a_reusable_cache(kade, tmp_path):
    proc = _start_long_build(kade, tmp_path, "killed:1")
    proc.kill()
    proc.wait()
    proc.stderr.close()
    proc.stdout.close()
    leftovers = kade("ps", "-aq").stdout.split()
    if leftovers:
        kade("rm", "-f", *leftovers)
    check = kade("system", "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    _assert_nothing_left(kade, "killed:1")
    # the step finished before the kill is reused
    write_tree(tmp_path, {"Dockerfile": LONG.replace("sleep 30", "true")})
    p = build(kade, tmp_path, "-t", "killed:1")
    assert steps(p.stderr)[1:] == [("COPY f.txt /f.txt", "CACHED"),
                                   ("RUN echo first > /first", "CACHED"),
                                   ("RUN echo started; true", "DONE")]
    assert run(kade, "killed:1", "cat", "/first") == "first\n"
    # the killed build's scratch files (its COPY's tar) go with a builder prune
    scratch = os.path.join(kade.root, "builder", "tmp")
    assert os.listdir(scratch)
    kade("builder", "prune", "-f")
    assert os.listdir(scratch) == []


def _interrupt(proc: subprocess.Popen) -> str:
    """Ctrl-C the build; its remaining log."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=25)  # well before the RUN's sleep 30 would end
    finally:
        proc.kill()
        rest = proc.stderr.read()
        proc.stderr.close()
        proc.stdout.close()
    return rest


def test_ctrl_c_stops_the_build_and_removes_its_container(kade, tmp_path):
    proc = _start_long_build(kade, tmp_path, "interrupted:1")
    rest = _interrupt(proc)
    assert proc.returncode != 0, rest
    assert "Traceback" not in rest
    _assert_nothing_left(kade, "interrupted:1")
    check = kade("system", "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr


MULTI = """\
FROM busybox AS slow
RUN echo started; sleep 30
FROM busybox AS {second}
RUN {second_run}
FROM busybox
COPY --from=slow /etc/passwd /a
COPY --from={second} /etc/passwd /b
"""


def test_ctrl_c_stops_every_stage_of_a_multi_stage_build(kade, tmp_path):
    df = MULTI.format(second="quick", second_run="echo quick")
    proc = _start_long_build(kade, tmp_path, "interrupted:2", dockerfile=df)
    rest = _interrupt(proc)
    assert proc.returncode != 0 and "Traceback" not in rest, rest
    _assert_nothing_left(kade, "interrupted:2")


def test_a_failing_stage_stops_the_other_stages(kade, tmp_path):
    df = MULTI.format(second="failing", second_run="sleep 1; echo failing stage; exit 5")
    p = build(kade, tmp_path, "-t", "stagefail:1", dockerfile=df, check=False,
              timeout=25)  # the slow stage's sleep 30 is killed, not waited for
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "failing stage" in p.stderr
    assert p.returncode == 5
    assert p.stderr.splitlines()[-1] == ("The command '/bin/sh -c sleep 1; echo failing stage; "
                                         "exit 5' returned a non-zero code: 5")
    _assert_nothing_left(kade, "stagefail:1")
