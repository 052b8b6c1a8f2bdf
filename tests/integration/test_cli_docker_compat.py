"""Differences from docker 20.10 found in use (issue 10), each checked as a user sees it:
`run -h`, `stop -s`, image and layer sizes, `system df -v` names, `pull`'s
`Already exists`, `exec -t`'s TERM, and every verb's --help."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request

import pytest

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]


def test_run_h_is_the_hostname(kade):
    out = kade("run", "--rm", "-h", "myhost", "busybox", "hostname")
    assert out.stdout == "myhost\n"
    created = kade("create", "-h", "other", "busybox", "hostname").stdout.strip()
    assert kade("start", "-a", created).stdout == "other\n"
    kade("rm", created)


def _wait_for_log(kade, cid: str, text: str) -> None:
    """Until the container has said `text` (it sets its trap first): a condition,
    not a timing; the deadline only keeps a broken container from hanging the run."""
    deadline = time.monotonic() + 30
    while text not in kade("logs", cid).stdout:
        assert time.monotonic() < deadline, kade("logs", cid).stdout
        time.sleep(0.05)


@pytest.mark.parametrize("verb", ["stop", "restart"])
def test_stop_signal_is_sent_first(kade, verb):
    script = "trap 'echo got USR1; exit 3' USR1; echo ready; while :; do sleep 0.1; done"
    cid = kade("run", "-d", "busybox", "sh", "-c", script).stdout.strip()
    try:
        _wait_for_log(kade, cid, "ready")
        kade(verb, "-s", "SIGUSR1", cid)
        assert "got USR1" in kade("logs", cid).stdout
        if verb == "stop":  # the trap's exit code, not SIGKILL's 137
            assert kade("inspect", "-f", "{{.State.ExitCode}}", cid).stdout == "3\n"
        else:
            assert kade("inspect", "-f", "{{.State.Running}}", cid).stdout == "true\n"
    finally:
        kade("rm", "-f", cid)


def test_stop_with_a_bad_signal_names_it(kade):
    cid = kade("run", "-d", "busybox", "sleep", "60").stdout.strip()
    try:
        out = kade("stop", "-s", "SIGNOPE", cid, check=False)
        assert out.returncode != 0
        assert "SIGNOPE" in out.stderr and "Traceback" not in out.stderr
        assert kade("inspect", "-f", "{{.State.Running}}", cid).stdout == "true\n"
    finally:
        kade("rm", "-f", cid)


def test_exec_t_sets_term_unless_given(kade):
    cid = kade("run", "-d", "busybox", "sleep", "60").stdout.strip()
    try:
        env = kade("exec", "-t", cid, "env").stdout.replace("\r", "").splitlines()
        assert "TERM=xterm" in env
        env = kade("exec", "-t", "-e", "TERM=vt100", cid, "env").stdout.replace("\r", "")
        assert "TERM=vt100" in env.splitlines() and "TERM=xterm" not in env
        assert "TERM=" not in kade("exec", cid, "env").stdout
    finally:
        kade("rm", "-f", cid)


def test_run_t_sets_term(kade):
    out = kade("run", "--rm", "-t", "busybox", "env").stdout.replace("\r", "")
    assert "TERM=xterm" in out.splitlines()


# --- sizes ----------------------------------------------------------------------
def _docker_size(layer_tars: list[bytes]) -> int:
    """What docker's overlay2 counts, computed from the saved layers instead of the
    store: regular files' sizes plus symlinks' (their target's length), hard links
    once, directories and whiteouts nothing."""
    total = 0
    for data in layer_tars:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                if m.isreg():
                    total += m.size
                elif m.issym():
                    total += len(m.linkname.encode())
    return total


def _saved_layers(kade, tmp_path, image: str) -> list[bytes]:
    out = tmp_path / "image.tar"
    kade("save", "-o", str(out), image)
    with tarfile.open(out) as tar:
        import json
        manifest = json.load(tar.extractfile("manifest.json"))
        return [tar.extractfile(name).read() for name in manifest[0]["Layers"]]


def test_image_and_layer_sizes_are_dockers(kade, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nWORKDIR /made/here\n"
                                    "RUN head -c 5000 /dev/zero > /f && ln /f /f2 "
                                    "&& ln -s /f /link\n")
    kade("build", "-q", "-t", "sizes:1", str(ctx))
    try:
        layers = _saved_layers(kade, tmp_path, "sizes:1")
        size = int(kade("image", "inspect", "-f", "{{.Size}}", "sizes:1").stdout)
        assert size == _docker_size(layers)
        rows = kade("history", "--format", "{{.CreatedBy}}|{{.Size}}", "sizes:1").stdout
        sizes = {line.split("|")[0]: line.split("|")[1] for line in rows.splitlines()}
        workdir = next(v for k, v in sizes.items() if "WORKDIR /made/here" in k)
        assert workdir == "0B"
        run = next(v for k, v in sizes.items() if "head -c 5000" in k)
        assert run == "5kB"  # the file once (its hard link is no second copy), the link 2B
        busybox = int(kade("image", "inspect", "-f", "{{.Size}}", "busybox").stdout)
        assert busybox == _docker_size(_saved_layers(kade, tmp_path, "busybox"))
    finally:
        kade("rmi", "sizes:1")


def test_system_df_v_keeps_registry_and_namespace(kade):
    kade("tag", "busybox", "localhost:5000/team/app:v1")
    try:
        out = kade("system", "df", "-v").stdout
        rows = [line.split() for line in out.splitlines()]
        assert ["localhost:5000/team/app", "v1"] in [r[:2] for r in rows]
        assert ["busybox", "latest"] in [r[:2] for r in rows]
    finally:
        kade("rmi", "localhost:5000/team/app:v1")


# --- pull -----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry(kade, tmp_path):
    port = _free_port()
    proc = subprocess.Popen(KADE + ["--root", kade.root, "registry", "serve", "--addr",
                                    f"127.0.0.1:{port}", "--root", str(tmp_path / "reg")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        yield f"localhost:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp_path / "reg", ignore_errors=True)


def test_pull_shows_layers_already_present(kade, registry, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo pulled > /pulled\n")
    name = f"{registry}/team/layered"
    kade("build", "-q", "-t", name, str(ctx))
    kade("push", name)
    kade("rmi", name)
    out = kade("pull", name).stdout.splitlines()
    present = [ln for ln in out if ln.endswith(": Already exists")]
    pulled = [ln for ln in out if ln.endswith(": Pull complete")]
    assert len(present) == 1 and len(pulled) == 1, out
    assert re.fullmatch(r"[0-9a-f]{12}: Already exists", present[0])
    assert out[-1] == f"{name}:latest"
    kade("rmi", name)


# --- help -----------------------------------------------------------------------
VERBS = ["run", "create", "start", "stop", "restart", "kill", "pause", "unpause", "wait", "rm",
         "rename", "ps", "logs", "inspect", "exec", "top", "stats", "port", "events", "cp",
         "diff", "export", "commit", "images", "rmi", "tag", "history", "import", "save",
         "load", "version", "info", "pull", "push", "login", "logout", "build"]
GROUPS = {"container": ["commit", "cp", "create", "diff", "exec", "export", "inspect", "kill",
                        "logs", "ls", "pause", "port", "prune", "rename", "restart", "rm",
                        "run", "start", "stats", "stop", "top", "unpause", "wait"],
          "image": ["bootstrap", "build", "history", "import", "inspect", "layers", "load",
                    "ls", "prune", "pull", "push", "rm", "save", "tag"],
          "builder": ["build", "prune"], "volume": ["create", "inspect", "ls", "prune", "rm"],
          "network": ["connect", "create", "disconnect", "inspect", "ls", "prune", "rm"],
          "system": ["check", "df", "info", "monitor", "prune"], "registry": ["gc", "serve"]}
FLAG = re.compile(r"^  (?:-(\w), )?\s*--([\w-]+)(?: ([a-z0-9]+))?(?:\s{2,}(\S.*))?$")


def _help(root, *words):
    return subprocess.run(KADE + ["--root", str(root), *words], capture_output=True,
                          text=True, timeout=60)


def options(text: str) -> dict[str, dict]:
    """The Options section of a help text: long name -> short, type, description
    (continuation lines joined)."""
    flags: dict[str, dict] = {}
    current = None
    for line in text.split("\nOptions:\n", 1)[-1].splitlines():
        m = FLAG.match(line)
        if m:
            current = m.group(2)
            flags[current] = {"short": m.group(1) or "", "type": m.group(3) or "",
                              "desc": m.group(4) or ""}
        elif current and line.startswith("      ") and line.strip():
            flags[current]["desc"] += " " + line.strip()
        else:
            current = None
    return flags


ALL = [(v,) for v in VERBS] + [(g, s) for g, subs in GROUPS.items() for s in subs]


@pytest.mark.parametrize("words", ALL, ids=" ".join)
def test_every_flag_is_described(tmp_path, words):
    out = _help(tmp_path, *words, "--help")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    usage, line = out.stdout.strip("\n").split("\n\n")[:2]
    assert usage.startswith("Usage:  kade ")
    assert line.strip() and "Options:" not in line, out.stdout  # the command's one line
    assert not os.listdir(tmp_path), "help made a store"
    for name, flag in options(out.stdout).items():
        assert flag["desc"], f"kade {' '.join(words)}: --{name} has no description"
    if words in (("run",), ("create",)):
        assert "  -h, --hostname string" in out.stdout and "      --help " in out.stdout


def test_h_asks_for_help_where_it_means_nothing_else(tmp_path):
    out = _help(tmp_path, "stop", "-h")
    assert out.returncode == 0 and "Stop one or more running containers" in out.stdout


def test_root_help_groups_commands_as_docker(tmp_path):
    out = _help(tmp_path, "--help")
    assert out.returncode == 0
    text = out.stdout
    management = text.split("Management Commands:\n")[1].split("\n\n")[0].splitlines()
    commands = text.split("\nCommands:\n")[1].split("\n\n")[0].splitlines()
    assert "  volume      Manage volumes" in management
    assert "  container   Manage containers" in management
    assert "  stop        Stop one or more running containers" in commands
    assert "  run         Run a command in a new container" in commands
    assert all(len(line.split(None, 1)) == 2 for line in management + commands)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_group_help_no_subcommand_and_unknown_one(tmp_path, group):
    helped = _help(tmp_path, group, "--help")
    assert helped.returncode == 0
    assert f"Usage:  kade {group} COMMAND" in helped.stdout
    for sub in GROUPS[group]:
        assert re.search(rf"^  {sub} +\S", helped.stdout, re.M), sub
    bare = _help(tmp_path, group)  # docker's ShowHelp: the help on stderr, exit 0
    assert bare.returncode == 0 and bare.stderr == helped.stdout
    wrong = _help(tmp_path, group, "nonsense")
    assert wrong.returncode == 1 and f"Usage:  kade {group} COMMAND" in wrong.stderr


def test_unknown_command_is_dockers_error(tmp_path):
    out = _help(tmp_path, "nonsense")
    assert out.returncode == 1
    assert out.stderr == "kade: 'nonsense' is not a kade command.\nSee 'kade --help'\n"


def _docker_help(*words) -> str | None:
    try:
        out = subprocess.run(["docker", *words, "--help"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


@pytest.mark.compat
@pytest.mark.parametrize("words", ALL, ids=" ".join)
def test_flags_match_dockers(tmp_path, words):
    """Against the installed docker CLI: a flag both have has docker's short letter,
    and, when the CLI is docker 20.10 (the reference), docker's description."""
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not installed")
    theirs_text = _docker_help(*words)
    if theirs_text is None or words[0] in ("registry",) or words[-1] in (
            "bootstrap", "check", "monitor"):
        pytest.skip("docker has no such command")
    version = subprocess.run(["docker", "--version"], capture_output=True, text=True).stdout
    ours, theirs = options(_help(tmp_path, *words, "--help").stdout), options(theirs_text)
    for name in ours.keys() & theirs.keys():
        assert ours[name]["short"] == theirs[name]["short"], name
        if version.startswith("Docker version 20.10"):
            assert ours[name]["desc"] == theirs[name]["desc"], name
