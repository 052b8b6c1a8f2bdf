"""`kade build` as a docker user sees it: every instruction's effect on the image
(inspect, `kade run`, `kade history`), COPY and ADD, contexts and options.

Real builds through the CLI on the bootstrapped busybox; nothing leaves loopback.
Cache, failure and interruption tests live in test_build_cache.py and
test_build_faults.py.
"""

import io
import os
import tarfile

import pytest
from build_helpers import build, history, image_id, inspect, kade_bytes, run, write_tree


def _arch(kade) -> str:
    return kade("image", "inspect", "-f", "{{.Architecture}}", "busybox").stdout.strip()


# --- metadata instructions ------------------------------------------------------------
METADATA = """\
FROM busybox
MAINTAINER Jane Doe <jane@example.com>
LABEL org.example.a=1 "b c"="d e"
ENV GREETING=hello NAME="big world"
ENV BOTH $GREETING-$NAME
ENV LEGACY old style form
EXPOSE 80 53/udp
VOLUME /data /logs
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --retries=4 CMD test -e /etc/passwd
WORKDIR /app/sub
RUN pwd > /pwd1
WORKDIR /etc
RUN pwd > /pwd2 && echo "$BOTH" > /both
USER nobody
RUN ["sh", "-c", "echo exec form as $(id -un)"]
CMD ["echo", "cmd says hi"]
"""


@pytest.fixture(scope="module")
def meta(kade, tmp_path_factory):
    ctx = tmp_path_factory.mktemp("meta")
    p = build(kade, ctx, "-t", "meta:1", "-t", "meta:2", "-t", "other/meta",
              dockerfile=METADATA)
    return p


def test_metadata_instructions_in_inspect(kade, meta):
    info = inspect(kade, "meta:1")
    cfg = info["Config"]
    assert info["Author"] == "Jane Doe <jane@example.com>"
    assert cfg["Labels"] == {"org.example.a": "1", "b c": "d e"}
    assert "GREETING=hello" in cfg["Env"] and "NAME=big world" in cfg["Env"]
    assert "BOTH=hello-big world" in cfg["Env"] and "LEGACY=old style form" in cfg["Env"]
    assert any(e.startswith("PATH=") for e in cfg["Env"])
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}}
    assert cfg["StopSignal"] == "SIGUSR1"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "test -e /etc/passwd"],
                                  "Interval": 5_000_000_000, "Timeout": 3_000_000_000,
                                  "StartPeriod": 2_000_000_000, "Retries": 4}
    assert cfg["WorkingDir"] == "/etc"
    assert cfg["User"] == "nobody"
    assert cfg["Cmd"] == ["echo", "cmd says hi"]
    assert info["Os"] == "linux" and info["Architecture"] == _arch(kade)


def test_several_tags_name_one_image(kade, meta):
    ids = {image_id(kade, ref) for ref in ("meta:1", "meta:2", "other/meta:latest")}
    assert len(ids) == 1
    assert "naming to docker.io/library/meta:2" in meta.stderr


def test_run_sees_workdir_env_user_and_cmd(kade, meta):
    assert "exec form as nobody" in meta.stderr
    assert run(kade, "meta:1") == "cmd says hi\n"
    out = run(kade, "meta:1", "sh", "-c", "cat /pwd1 /pwd2 /both; id -un; pwd")
    assert out == "/app/sub\n/etc\nhello-big world\nnobody\n/etc\n"


def test_history_names_each_steps_image_as_docker_legacy_does(kade, meta):
    ids = kade("history", "--format", "{{.ID}}", "meta:1").stdout.split()
    base = kade("history", "--format", "{{.ID}}", "busybox").stdout.split()
    assert ids[0] == image_id(kade, "meta:1")[7:19]
    own = ids[:len(ids) - len(base)]
    assert "<missing>" not in own and len(set(own)) == len(own)  # one image per step
    assert ids[len(ids) - len(base):] == base  # then busybox's rows, as busybox shows them


def test_history_rows_in_docker_style(kade, meta):
    rows = history(kade, "meta:1")
    base = history(kade, "busybox")
    assert rows[len(rows) - len(base):] == base
    own = [r for r in rows[:len(rows) - len(base)]][::-1]
    nop = "/bin/sh -c #(nop)  "
    assert own == [
        (nop + "MAINTAINER Jane Doe <jane@example.com>", "0B"),
        (nop + "LABEL org.example.a=1 b c=d e", "0B"),
        (nop + "ENV GREETING=hello NAME=big world", "0B"),
        (nop + "ENV BOTH=hello-big world", "0B"),
        (nop + "ENV LEGACY=old style form", "0B"),
        (nop + "EXPOSE 53/udp 80", "0B"),  # sorted by the parser, as docker does
        (nop + "VOLUME [/data /logs]", "0B"),
        (nop + "STOPSIGNAL SIGUSR1", "0B"),
        (nop + 'HEALTHCHECK &{["CMD-SHELL" "test -e /etc/passwd"] "5s" "3s" "2s" \'\\x04\'}',
         "0B"),
        ("/bin/sh -c #(nop) WORKDIR /app/sub", own[9][1]),  # one space: docker's
        ("/bin/sh -c pwd > /pwd1", own[10][1]),
        ("/bin/sh -c #(nop) WORKDIR /etc", "0B"),
        ('/bin/sh -c pwd > /pwd2 && echo "$BOTH" > /both', own[12][1]),
        (nop + "USER nobody", "0B"),
        ("sh -c echo exec form as $(id -un)", "0B"),  # it wrote nothing: an empty layer
        (nop + 'CMD ["echo" "cmd says hi"]', "0B"),
    ]
    # RUNs that write files add bytes; a WORKDIR that only makes its directory adds a
    # layer of 0B, since docker's sizes count no directories
    assert own[9][1] == "0B" and all(own[i][1] != "0B" for i in (10, 12))


def test_layers_only_for_file_system_changes(kade, meta):
    layers = inspect(kade, "meta:1")["RootFS"]["Layers"]
    base = inspect(kade, "busybox")["RootFS"]["Layers"]
    # WORKDIR /app/sub, RUN, RUN; not the existing /etc, nor any metadata
    assert layers[:len(base)] == base and len(layers) == len(base) + 3


def test_from_scratch(kade, tmp_path):
    build(kade, tmp_path, "-t", "scratch:1", dockerfile="""\
FROM scratch
COPY --from=busybox /bin/busybox /bin/busybox
CMD ["/bin/busybox", "echo", "from scratch"]
""")
    info = inspect(kade, "scratch:1")
    assert len(info["RootFS"]["Layers"]) == 1
    assert info["Config"]["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert run(kade, "scratch:1") == "from scratch\n"


def test_entrypoint_resets_an_inherited_cmd(kade, tmp_path):
    build(kade, tmp_path / "a", "-t", "ep:inherit", dockerfile="""\
FROM busybox
ENTRYPOINT ["echo", "ep"]
""")
    cfg = inspect(kade, "ep:inherit")["Config"]
    assert cfg["Entrypoint"] == ["echo", "ep"] and cfg["Cmd"] is None
    assert run(kade, "ep:inherit") == "ep\n"
    build(kade, tmp_path / "b", "-t", "ep:own", dockerfile="""\
FROM busybox
CMD ["kept"]
ENTRYPOINT echo "shell form:"
""")
    cfg = inspect(kade, "ep:own")["Config"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", 'echo "shell form:"']
    assert cfg["Cmd"] == ["kept"]
    assert run(kade, "ep:own") == "shell form:\n"


def test_shell_changes_later_run_and_cmd(kade, tmp_path):
    p = build(kade, tmp_path, "-t", "shell:1", dockerfile="""\
FROM busybox
RUN echo before
SHELL ["/bin/echo", "via-shell:"]
RUN hello there
CMD shell form
""")
    assert "via-shell: hello there" in p.stderr
    cfg = inspect(kade, "shell:1")["Config"]
    assert cfg["Shell"] == ["/bin/echo", "via-shell:"]
    assert cfg["Cmd"] == ["/bin/echo", "via-shell:", "shell form"]
    rows = [r[0] for r in history(kade, "shell:1")]
    assert rows[:3] == ['/bin/echo via-shell: #(nop)  CMD ["/bin/echo" "via-shell:" "shell form"]',
                        "/bin/echo via-shell: hello there",
                        # docker's commit comments with the shell just set
                        "/bin/echo via-shell: #(nop)  SHELL [/bin/echo via-shell:]"]


# --- ARG --------------------------------------------------------------------------------
ARGS = """\
ARG BASE=busybox
ARG VERSION=1.0
ARG ONLYMETA=meta
FROM $BASE
ARG VERSION
ARG WHO=world
ARG OVER=arg
ENV OVER=env
ARG TARGETARCH
RUN echo "v=$VERSION who=$WHO over=$OVER arch=$TARGETARCH meta=[$ONLYMETA] proxy=$HTTP_PROXY" > /args
"""


def test_args_defaults_build_args_and_scoping(kade, tmp_path):
    p = build(kade, tmp_path, "-t", "args:1", "--build-arg", "WHO=you",
              "--build-arg", "UNUSED=1", "--build-arg", "HTTP_PROXY=http://127.0.0.1:9",
              dockerfile=ARGS)
    out = run(kade, "args:1", "cat", "/args")
    assert out == (f"v=1.0 who=you over=env arch={_arch(kade)} meta=[] "
                   "proxy=http://127.0.0.1:9\n")
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in p.stderr
    text = "\n".join(r[0] for r in history(kade, "args:1"))
    assert "WHO=you" in text and "VERSION=1.0" in text
    assert "HTTP_PROXY=" not in text and "127.0.0.1:9" not in text
    # ARG values are not kept in the image's environment
    env = inspect(kade, "args:1")["Config"]["Env"]
    assert "OVER=env" in env and not any(e.startswith(("WHO=", "VERSION=")) for e in env)


def test_meta_arg_picks_the_base_image(kade, tmp_path):
    build(kade, tmp_path, "-t", "args:base", "--build-arg", "BASE=args:1", dockerfile=ARGS)
    # the new base already has /args; the build rewrote it with the redeclared VERSION
    assert run(kade, "args:base", "cat", "/args").startswith("v=1.0 who=world over=env")
    assert inspect(kade, "args:base")["RootFS"]["Layers"][:-1] == \
        inspect(kade, "args:1")["RootFS"]["Layers"]


def test_label_flag_and_onbuild_triggers(kade, tmp_path):
    build(kade, tmp_path / "parent", "-t", "onb:parent", "--label", "com.example.by=flag",
          dockerfile="""\
FROM busybox
LABEL in.file=yes
ONBUILD RUN echo triggered > /onbuild
ONBUILD COPY child.txt /from-child
""")
    cfg = inspect(kade, "onb:parent")["Config"]
    assert cfg["Labels"] == {"in.file": "yes", "com.example.by": "flag"}
    assert cfg["OnBuild"] == ["RUN echo triggered > /onbuild", "COPY child.txt /from-child"]
    assert history(kade, "onb:parent")[0] == ("/bin/sh -c #(nop)  LABEL com.example.by=flag", "0B")
    assert "onbuild" not in run(kade, "onb:parent", "ls", "/")

    p = build(kade, tmp_path / "child", "-t", "onb:child", dockerfile="FROM onb:parent\n",
              files={"child.txt": "child's file\n"})
    assert "ONBUILD RUN echo triggered" in p.stderr
    assert run(kade, "onb:child", "cat", "/onbuild", "/from-child") == \
        "triggered\nchild's file\n"
    cfg = inspect(kade, "onb:child")["Config"]
    assert not cfg["OnBuild"]
    assert cfg["Labels"] == {"in.file": "yes", "com.example.by": "flag"}


# --- COPY and ADD -------------------------------------------------------------------------
def _tar(members: dict, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


COPIES = """\
FROM busybox
RUN echo 'app:x:1234:2345::/home/app:/bin/sh' >> /etc/passwd && echo 'grp:x:2345:' >> /etc/group && mkdir /exists
COPY --chown=app:grp owned.txt /o/named
COPY --chown=1001:1002 owned.txt /o/numeric
COPY --chown=1001 owned.txt /o/uidonly
COPY --chmod=0741 owned.txt /o/mode
COPY files/*.txt /w/
COPY dir /d
COPY owned.txt /t/
COPY owned.txt /n/newname
COPY owned.txt /exists
COPY --parents files/a.txt dir/sub/x /p/
ADD arch.tar arch.tar.gz /x/
ADD plain.txt /x/plain.txt
COPY arch.tar /notx/
WORKDIR /rel
COPY owned.txt ./
COPY owned.txt here
"""


@pytest.fixture(scope="module")
def copies(kade, tmp_path_factory):
    ctx = tmp_path_factory.mktemp("copies")
    files = {"owned.txt": "owned\n", "files/a.txt": "a\n", "files/b.txt": "b\n",
             "files/c.md": "c\n", "dir/sub/x": "x\n", "dir/y": "y\n", "plain.txt": "plain\n",
             "arch.tar": _tar({"t/in-tar": b"tar\n"}),
             "arch.tar.gz": _tar({"g/in-gz": b"gz\n"}, gz=True)}
    write_tree(ctx, files)
    for rel in files:
        os.chmod(ctx / rel, 0o644)
    build(kade, ctx, "-t", "copies:1", dockerfile=COPIES)
    return "copies:1"


def _stat(kade, image, *paths) -> list[str]:
    out = run(kade, image, "stat", "-c", "%n %F %u:%g %a", *paths)
    return out.splitlines()


def test_copy_chown_by_name_and_number_and_chmod(kade, copies):
    assert _stat(kade, copies, "/o/named", "/o/numeric", "/o/uidonly", "/o/mode", "/o") == [
        "/o/named regular file 1234:2345 644",
        "/o/numeric regular file 1001:1002 644",
        "/o/uidonly regular file 1001:1001 644",
        "/o/mode regular file 0:0 741",
        "/o directory 1234:2345 755",  # made by the first COPY, for its owner (docker's)
    ]


def test_copy_wildcards_directories_and_trailing_slash_rules(kade, copies):
    out = run(kade, copies, "sh", "-c", "find /w /d /t /n /exists /p /rel | sort")
    assert out.split() == [
        "/d", "/d/sub", "/d/sub/x", "/d/y",
        "/exists", "/exists/owned.txt",
        "/n", "/n/newname",
        "/p", "/p/dir", "/p/dir/sub", "/p/dir/sub/x", "/p/files", "/p/files/a.txt",
        "/rel", "/rel/here", "/rel/owned.txt",
        "/t", "/t/owned.txt",
        "/w", "/w/a.txt", "/w/b.txt",
    ]
    assert run(kade, copies, "cat", "/n/newname", "/d/sub/x") == "owned\nx\n"


def test_add_extracts_local_archives_but_copy_does_not(kade, copies):
    out = run(kade, copies, "sh", "-c", "find /x /notx | sort; cat /x/t/in-tar /x/g/in-gz")
    assert out.split() == ["/notx", "/notx/arch.tar", "/x", "/x/g", "/x/g/in-gz",
                           "/x/plain.txt", "/x/t", "/x/t/in-tar", "tar", "gz"]


def test_deletions_and_a_copy_through_an_image_symlink(kade, tmp_path):
    build(kade, tmp_path, "-t", "whiteout:1", files={"f": "f\n"}, dockerfile="""\
FROM busybox
RUN mkdir -p /d/sub && echo 1 > /d/a && echo 2 > /d/sub/b && mkdir /target && ln -s /target /link
RUN rm /d/a && rm -rf /d/sub && mkdir /d/sub && echo new > /d/sub/c
COPY f /link/
""")
    out = run(kade, "whiteout:1", "sh", "-c", "find /d /target /link | sort")
    assert out.split() == ["/d", "/d/sub", "/d/sub/c", "/link", "/target", "/target/f"]


def test_copy_and_add_history_in_docker_style(kade, copies):
    import re
    rows = {r[0] for r in history(kade, copies)}
    sha = "[0-9a-f]{64}"
    for pattern in (rf"COPY --chown=app:grpfile:{sha} in /o/named ",
                    rf"COPY file:{sha} in /exists ", rf"COPY dir:{sha} in /d ",
                    rf"COPY multi:{sha} in /w/ ", rf"ADD multi:{sha} in /x/ ",
                    rf"ADD file:{sha} in /x/plain.txt "):
        assert any(re.fullmatch(r"/bin/sh -c #\(nop\) " + pattern, r) for r in rows), pattern


def test_copy_of_several_sources_needs_a_directory(kade, tmp_path):
    p = build(kade, tmp_path, dockerfile="FROM busybox\nCOPY a b /dest\n",
              files={"a": "a", "b": "b"}, check=False)
    assert p.returncode != 0
    assert ("When using COPY with more than one source file, the destination must be a "
            "directory and end with a /") in p.stderr


def test_copy_from_stage_name_index_and_image(kade, tmp_path):
    build(kade, tmp_path, "-t", "from:1", dockerfile="""\
FROM busybox AS first
RUN echo one > /one && chown 7:8 /one
FROM busybox
RUN echo two > /two
FROM busybox
COPY --from=first /one /got/one
COPY --from=1 /two /got/
COPY --from=busybox /bin/busybox /got/bb
""")
    out = run(kade, "from:1", "sh", "-c", "cat /got/one /got/two; stat -c '%u:%g' /got/one; "
              "cmp /got/bb /bin/busybox && echo same")
    assert out == "one\ntwo\n7:8\nsame\n"


def test_heredocs(kade, tmp_path):
    build(kade, tmp_path, "-t", "heredoc:1", dockerfile="""\
FROM busybox
ENV WHO=heredoc
RUN <<EOF
echo first line > /hd-run
echo "second $WHO" >> /hd-run
EOF
COPY <<EOF /etc/hd-copy
copied for $WHO
EOF
""")
    assert run(kade, "heredoc:1", "cat", "/hd-run", "/etc/hd-copy") == \
        "first line\nsecond heredoc\ncopied for heredoc\n"


def test_add_url_is_downloaded_not_extracted(kade, tmp_path):
    import functools
    import http.server
    import threading
    served = tmp_path / "served"
    served.mkdir()
    (served / "remote.tar").write_bytes(_tar({"inside": b"not extracted\n"}))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/remote.tar"
        build(kade, tmp_path / "ctx", "-t", "url:1", dockerfile=f"FROM busybox\nADD {url} /dl/\n")
    finally:
        server.shutdown()
        server.server_close()
    assert _stat(kade, "url:1", "/dl/remote.tar") == ["/dl/remote.tar regular file 0:0 600"]
    assert run(kade, "url:1", "ls", "/dl") == "remote.tar\n"


def test_dockerignore_exceptions_and_double_star(kade, tmp_path):
    files = {".dockerignore": "# comment\n*.log\n!keep.log\n**/*.tmp\nsecret/\n/dir\n"
                              "!dir/keep\nDockerfile\n.dockerignore\n",
             "a.log": "", "keep.log": "", "x.tmp": "", "deep/er/y.tmp": "", "deep/er/z.txt": "",
             "secret/key": "", "ok.txt": "", "dir/gone": "", "dir/keep": "",
             "other/dir/kept": ""}
    build(kade, tmp_path, "-t", "ign:1", files=files, dockerfile="FROM busybox\nCOPY . /ctx/\n")
    out = run(kade, "ign:1", "sh", "-c", "cd /ctx && find . -type f | sort")
    # the Dockerfile and .dockerignore are read, but ignored ones are not copied
    assert out.split() == ["./deep/er/z.txt", "./dir/keep", "./keep.log", "./ok.txt",
                           "./other/dir/kept"]
    p = build(kade, tmp_path, dockerfile="FROM busybox\nCOPY a.log /\n", check=False)
    assert p.returncode != 0 and "a.log" in p.stderr


def test_named_dockerignore_for_f(kade, tmp_path):
    files = {".dockerignore": "b.txt\n", "app.Dockerfile": "FROM busybox\nCOPY . /ctx/\n",
             "app.Dockerfile.dockerignore": "a.txt\n", "a.txt": "", "b.txt": ""}
    ctx = write_tree(tmp_path, files)
    kade("build", "-q", "-t", "ign:named", "-f", os.path.join(ctx, "app.Dockerfile"), ctx)
    listed = run(kade, "ign:named", "ls", "/ctx").split()
    assert "b.txt" in listed and "a.txt" not in listed


# --- contexts ------------------------------------------------------------------------------
def test_context_from_a_tar_on_stdin(kade, tmp_path):
    data = _tar({"Dockerfile": b"FROM busybox\nCOPY in-tar.txt /\n", "in-tar.txt": b"from tar\n",
                 "other.Dockerfile": b"FROM busybox\nCOPY in-tar.txt /other.txt\n"})
    kade_bytes(kade, "build", "-q", "-t", "tarctx:1", "-", input=data)
    assert run(kade, "tarctx:1", "cat", "/in-tar.txt") == "from tar\n"
    kade_bytes(kade, "build", "-q", "-t", "tarctx:2", "-f", "other.Dockerfile", "-", input=data)
    assert run(kade, "tarctx:2", "cat", "/other.txt") == "from tar\n"
    gz = _tar({"Dockerfile": b"FROM busybox\nCOPY in-gz.txt /\n", "in-gz.txt": b"from gz\n"},
              gz=True)
    kade_bytes(kade, "build", "-q", "-t", "tarctx:3", "-", input=gz)
    assert run(kade, "tarctx:3", "cat", "/in-gz.txt") == "from gz\n"


def test_dockerfile_on_stdin_with_a_directory(kade, tmp_path):
    ctx = write_tree(tmp_path, {"f.txt": "dir file\n", "Dockerfile": "FROM nothing-here\n"})
    kade_bytes(kade, "build", "-q", "-t", "stdin:1", "-f", "-", ctx,
               input=b"FROM busybox\nCOPY f.txt /\n")
    assert run(kade, "stdin:1", "cat", "/f.txt") == "dir file\n"


def test_dockerfile_alone_on_stdin(kade):
    kade_bytes(kade, "build", "-q", "-t", "stdin:2", "-",
               input=b"FROM busybox\nRUN echo no context > /r\n")
    assert run(kade, "stdin:2", "cat", "/r") == "no context\n"
    p = kade_bytes(kade, "build", "-t", "stdin:3", "-", input=b"FROM busybox\nCOPY f /\n",
                   check=False)
    assert p.returncode != 0
    assert b"no context" in p.stderr and b"COPY" in p.stderr


def test_f_names_another_dockerfile(kade, tmp_path):
    ctx = write_tree(tmp_path, {"Dockerfile": "FROM busybox\nRUN false\n",
                                "sub/Other": "FROM busybox\nCOPY f.txt /other\n", "f.txt": "f\n"})
    kade("build", "-q", "-t", "otherf:1", "-f", os.path.join(ctx, "sub/Other"), ctx)
    assert run(kade, "otherf:1", "cat", "/other") == "f\n"


# --- options --------------------------------------------------------------------------------
def test_target_builds_only_the_stages_it_needs(kade, tmp_path):
    p = build(kade, tmp_path, "--target", "Good", "-t", "target:1", dockerfile="""\
FROM busybox AS base
RUN echo base > /base
FROM busybox AS broken
RUN echo broken stage ran; exit 3
FROM base AS good
RUN echo good > /good
FROM broken
""")
    assert "broken stage ran" not in p.stderr
    assert run(kade, "target:1", "cat", "/base", "/good") == "base\ngood\n"
    p = build(kade, tmp_path, "--target", "nope", check=False)
    assert p.returncode != 0 and "nope" in p.stderr


def test_tty_progress_and_bad_progress(kade, tmp_path):
    df = "FROM busybox\nRUN echo live view\n"
    build(kade, tmp_path, "-t", "tty:1", dockerfile=df)
    p = kade("build", "--progress=tty", "-t", "tty:1", str(tmp_path))
    assert " => CACHED [2/2] RUN echo live view" in p.stderr
    assert f" => => writing image {image_id(kade, 'tty:1')}" in p.stderr
    p = kade("build", "--progress=fancy", str(tmp_path), check=False)
    assert p.returncode != 0 and '"fancy"' in p.stderr


def test_quiet_and_iidfile(kade, tmp_path):
    iid = tmp_path / "iid"
    p = build(kade, tmp_path / "ctx", "-q", "--iidfile", str(iid), "-t", "quiet:1",
              dockerfile="FROM busybox\nRUN echo noisy\n")
    assert p.stdout.strip() == image_id(kade, "quiet:1") == iid.read_text()
    assert p.stdout.count("\n") == 1 and "noisy" not in p.stdout + p.stderr


def test_no_cache_reruns_every_step(kade, tmp_path):
    df = "FROM busybox\nRUN echo ran > /r\nENV X=1\n"
    build(kade, tmp_path, "-t", "nocache:1", dockerfile=df)
    first = image_id(kade, "nocache:1")
    assert "CACHED" in build(kade, tmp_path, "-t", "nocache:1").stderr
    p = build(kade, tmp_path, "--no-cache", "-t", "nocache:1")
    assert "CACHED" not in p.stderr and image_id(kade, "nocache:1") != first


def test_other_platform_is_refused(kade, tmp_path):
    other = "arm64" if _arch(kade) != "arm64" else "amd64"
    p = build(kade, tmp_path, "--platform", f"linux/{other}", dockerfile="FROM busybox\n",
              check=False)
    assert p.returncode != 0 and f"linux/{other}" in p.stderr and "not supported" in p.stderr
    p = build(kade, tmp_path, dockerfile=f"FROM --platform=linux/{other} busybox\n", check=False)
    assert p.returncode != 0 and "not supported" in p.stderr


def _interfaces(text: str) -> set[str]:
    return {line.split(":")[0].strip() for line in text.splitlines()[2:]}


def test_network_modes_for_run(kade, tmp_path):
    before = _interfaces(open("/proc/net/dev").read())
    build(kade, tmp_path / "h", "--network", "host", "-t", "net:host", dockerfile="""\
FROM busybox
RUN cat /proc/net/dev > /net
RUN --network=none cat /proc/net/dev > /net-none
""")
    # the host's interfaces, less the veths other containers add and remove meanwhile
    host = before & _interfaces(open("/proc/net/dev").read())
    host = {name for name in host if not name.startswith("veth")}
    seen = _interfaces(run(kade, "net:host", "cat", "/net"))
    assert host <= seen and len(host) > 1
    # RUN --network=none wins over the build's --network
    assert _interfaces(run(kade, "net:host", "cat", "/net-none")) == {"lo"}
    build(kade, tmp_path / "n", "--network", "none", "-t", "net:none",
          dockerfile="FROM busybox\nRUN cat /proc/net/dev > /net\n")
    assert _interfaces(run(kade, "net:none", "cat", "/net")) == {"lo"}


def test_run_mounts_cache_bind_tmpfs(kade, tmp_path):
    df = """\
FROM busybox
ARG N
RUN --mount=type=cache,target=/cache echo "$N" >> /cache/log && cat /cache/log > /seen
RUN --mount=type=bind,target=/ctx cat /ctx/f.txt > /bound && ! touch /ctx/new 2>/dev/null
RUN --mount=type=tmpfs,target=/scratch grep -q ' /scratch tmpfs' /proc/mounts && echo t > /scratch/t
RUN --mount=type=bind,target=/rw,rw echo written > /rw/f.txt && cat /rw/f.txt > /rw-seen
"""
    build(kade, tmp_path, "-t", "mounts:1", "--build-arg", "N=one", dockerfile=df,
          files={"f.txt": "bound file\n"})
    build(kade, tmp_path, "-t", "mounts:2", "--build-arg", "N=two")
    assert run(kade, "mounts:2", "cat", "/seen", "/bound") == "one\ntwo\nbound file\n"
    # the mount points the runtime made are not the image's (BuildKit's rule)
    out = run(kade, "mounts:2", "sh", "-c", "ls -d /cache /ctx /scratch /rw 2>/dev/null; true")
    assert out == ""
    assert not os.path.exists(tmp_path / "new")
    # a rw bind takes writes, and throws them away
    assert run(kade, "mounts:2", "cat", "/rw-seen") == "written\n"
    assert (tmp_path / "f.txt").read_text() == "bound file\n"


def test_secret_mount_is_seen_and_not_kept(kade, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cret-value")
    p = build(kade, tmp_path / "ctx", "-t", "secret:1", "--secret", f"id=tok,src={secret}",
              dockerfile="""\
FROM busybox
RUN --mount=type=secret,id=tok sed 's/./&-/g' /run/secrets/tok
""")
    assert "s-3-c-r-e-t-" in p.stderr
    assert run(kade, "secret:1", "sh", "-c", "ls /run/secrets/tok 2>/dev/null; true") == ""
    assert "s3cret" not in kade("history", "--no-trunc", "secret:1").stdout
    saved = kade_bytes(kade, "save", "secret:1").stdout
    assert b"s3cret" not in saved
