"""kade.build.Builder against an in-memory Backend: what docker's legacy builder makes.

The fake stands at the seam (build/backend.py): images are dicts (an OCI config and
a file system, path -> Entry), content-addressed like docker's; RUN, COPY and WORKDIR
are recorded and change the fake file system; a step that changes nothing commits an
empty layer, as docker's NewChildImage does.
"""

import hashlib
import json
import os
import re
import tarfile
import tempfile
import threading

import pytest

from kade.build import BuildOptions, Builder, StepFailed
from kade.build.builder import DEFAULT_PATH
from kade.build.context import Context
from kade.build.parser import DockerfileError
from kade.errors import InvalidArgument, KadeError, NotFound
from kade.oci.platform import host_arch

BASE_PATH = "PATH=/usr/local/bin:/usr/bin:/bin"
PASSWD = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
USERS = {"root": 0, "app": 1000}
GROUPS = {"root": 0, "app": 1000, "staff": 50}


class Entry:
    def __init__(self, kind, data=b"", mode=0o644, uid=0, gid=0, target=""):
        self.kind, self.data, self.mode, self.uid, self.gid, self.target = \
            kind, data, mode, uid, gid, target

    def __repr__(self):
        return f"Entry({self.kind!r}, {self.data!r}, {self.mode:o}, {self.uid}:{self.gid})"


def directory(mode=0o755, uid=0, gid=0):
    return Entry("dir", mode=mode, uid=uid, gid=gid)


class FakeBackend:
    """The Backend protocol in memory. `calls` records (op, thread name, detail)."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.images = {}  # id -> {"config": dict, "files": {path: Entry}}
        self.tags = {}
        self.cache = {}
        self.calls = []
        self.on_run = None  # hook(req) called before a RUN "executes"
        self.cancelled = False
        self._lock = threading.Lock()

    # --- test helpers ---------------------------------------------------------------
    def add_image(self, ref, *, env=(BASE_PATH,), files=None, **config):
        run_config = {"Env": list(env), "Cmd": ["sh"], **config}
        cfg = {"architecture": host_arch(), "os": "linux", "config": run_config,
               "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
               "history": [{"created": "2020-01-01T00:00:00Z",
                            "created_by": "/bin/sh -c #(nop) ADD file:base in / "}]}
        fs = {"/": directory(), "/bin": directory(), "/etc": directory(),
              "/etc/passwd": Entry("file", PASSWD)}
        fs.update(files or {})
        self.tags[ref] = self._store(cfg, fs)
        return self.tags[ref]

    def ops(self, *names):
        return [c for c in self.calls if not names or c[0] in names]

    def files(self, image_id):
        return self.images[image_id]["files"]

    def history(self, image_id):
        return [(h["created_by"], bool(h.get("empty_layer")))
                for h in self.images[image_id]["config"]["history"]]

    # --- storage ------------------------------------------------------------------------
    def _store(self, config, files):
        image_id = "sha256:" + hashlib.sha256(
            json.dumps(config, sort_keys=True).encode()).hexdigest()
        with self._lock:
            self.images[image_id] = {"config": json.loads(json.dumps(config)),
                                     "files": dict(files)}
        return image_id

    def _record(self, op, detail):
        with self._lock:
            self.calls.append((op, threading.current_thread().name, detail))

    def _child(self, parent, config, changes):
        """An image on parent with changes as one layer, or an empty layer."""
        files = dict(self.files(parent)) if parent else {}
        config = json.loads(json.dumps(config))
        if changes:
            files.update(changes)
            listing = sorted((p, e.kind, e.data.hex() if isinstance(e.data, bytes) else e.data,
                              e.mode, e.uid, e.gid) for p, e in changes.items())
            diff_id = "sha256:" + hashlib.sha256(json.dumps(listing).encode()).hexdigest()
            rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            rootfs["diff_ids"] = list(rootfs.get("diff_ids") or []) + [diff_id]
        else:
            config["history"][-1]["empty_layer"] = True
        return self._store(config, files)

    # --- the Backend protocol --------------------------------------------------------------
    def base(self, ref, *, pull, local=False):
        self._record("base", ref)
        if ref not in self.tags:
            raise NotFound(f"pull access denied for {ref}, repository does not exist")
        return self.tags[ref], self.config(self.tags[ref])

    def config(self, image_id):
        return json.loads(json.dumps(self.images[image_id]["config"]))

    def cached(self, key):
        return self.cache.get(key)

    def remember(self, key, image_id):
        with self._lock:
            self.cache[key] = image_id

    def commit(self, parent, config):
        self._record("commit", config["history"][-1]["created_by"] if config.get("history")
                     else None)
        return self._store(config, self.files(parent) if parent else {})

    def run(self, parent, config, req, output):
        self._record("run", req)
        if self.on_run is not None:
            self.on_run(req)
        script = req.argv[-1]
        output(f"ran {script}\n".encode())
        m = re.fullmatch(r"exit (\d+)", script)
        if m:
            raise StepFailed(f'process "{" ".join(req.argv)}" did not complete '
                             f"successfully: exit code: {m.group(1)}", int(m.group(1)))
        m = re.fullmatch(r"echo (.*) > (/\S+)", script)
        if m:
            changes = {m.group(2): Entry("file", m.group(1).encode() + b"\n")}
        else:
            changes = {"/.ran": Entry("file", " ".join(req.argv).encode())}
        return self._child(parent, config, changes)

    def copy(self, parent, config, req):
        self._record("copy", req)
        fs = self.files(parent) if parent else {}
        changes = {}
        members = []
        if req.tar:
            with tarfile.open(req.tar) as t:
                members = [(m, t.extractfile(m).read() if m.isfile() else b"")
                           for m in t.getmembers()]
        into_dir = not (req.rename and not (fs.get(req.dest) and fs[req.dest].kind == "dir"))
        for m, data in members:
            name = m.name.rstrip("/")
            if into_dir:
                path = os.path.normpath(os.path.join(req.dest, name))
            else:
                path = req.dest
            kind = "dir" if m.isdir() else "link" if m.issym() else "file"
            changes[path] = Entry(kind, data, m.mode, m.uid, m.gid, m.linkname)
        for path in list(changes):  # missing parents, owned by dir_owner
            parent_dir = os.path.dirname(path)
            while parent_dir not in fs and parent_dir not in changes:
                changes[parent_dir] = directory(0o755, *req.dir_owner)
                parent_dir = os.path.dirname(parent_dir)
        return self._child(parent, config, changes)

    def user_ids(self, image_id, spec):
        user, _, group = spec.partition(":")

        def lookup(name, table):
            if name.isdigit():
                return int(name)
            if name not in table:
                raise InvalidArgument(f"unable to convert uid/gid chown string to host "
                                      f"mapping: can't find uid or gid for user/group in {spec!r}")
            return table[name]
        return lookup(user, USERS), lookup(group or user, GROUPS if group else USERS)

    def mkdir(self, parent, config, path):
        self._record("mkdir", path)
        fs = self.files(parent) if parent else {}
        changes = {}
        while path not in fs and path != "/":
            changes[path] = directory()
            path = os.path.dirname(path)
        return self._child(parent, config, changes)

    def export(self, image_id, paths, into):
        self._record("export", list(paths))
        for path, e in sorted(self.files(image_id).items()):
            if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths):
                continue
            dst = os.path.join(into, path.lstrip("/"))
            if e.kind == "dir":
                os.makedirs(dst, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if e.kind == "link":
                os.symlink(e.target, dst)
            else:
                with open(dst, "wb") as f:
                    f.write(e.data)
                os.chmod(dst, e.mode & 0o7777)

    def download(self, url, into):
        raise NotFound(f"no network in unit tests: {url}")

    def scratch_dir(self):
        return tempfile.mkdtemp(dir=self.tmp)

    def cancel(self):
        self.cancelled = True

    def before_threads(self):
        self._record("before_threads", None)

    def reuse_layer(self, parent, config, source, layer):
        raise AssertionError("--cache-from is not used in these tests")


class Progress:
    def __init__(self):
        self.titles, self.cached_steps, self.errors, self.warnings, self.output = [], [], [], [], []
        self._lock = threading.Lock()

    def start(self, name):
        with self._lock:
            self.titles.append(name)
            return len(self.titles) - 1

    def log(self, vertex, data):
        self.output.append((self.titles[vertex], data))

    def cached(self, vertex):
        self.cached_steps.append(self.titles[vertex])

    def done(self, vertex):
        pass

    def error(self, vertex, message):
        self.errors.append((self.titles[vertex], message))

    def warn(self, message):
        self.warnings.append(message)


@pytest.fixture
def backend(tmp_path):
    b = FakeBackend(tmp_path / "scratch")
    os.makedirs(b.tmp)
    b.add_image("base")
    return b


@pytest.fixture
def context(tmp_path):
    root = tmp_path / "ctx"
    root.mkdir()
    for name, data in {"a.txt": "a\n", "b.txt": "b\n", "src/main.c": "int main;\n",
                       "src/util.c": "int util;\n"}.items():
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(data)
        os.chmod(path, 0o644)
    return Context(str(root))


def build(backend, text, context=None, **opts):
    progress = Progress()
    image_id = Builder(backend, BuildOptions(dockerfile=text.encode(), context=context, **opts),
                       progress).build()
    return image_id, progress


def built(backend, text, context=None, **opts):
    """(config, new history entries) of a one-stage build on `base`."""
    image_id, _ = build(backend, text, context, **opts)
    return backend.config(image_id), backend.history(image_id)[1:]


def run_config(backend, text, **opts):
    return built(backend, text, **opts)[0]["config"]


def runs(backend):
    return [c[2] for c in backend.ops("run")]


# --- metadata steps: one history entry each, empty_layer ------------------------------------

def test_env(backend):
    cfg, hist = built(backend, "FROM base\nENV A=1\nENV B=2 C=\"x y\"\n")
    assert hist == [("/bin/sh -c #(nop)  ENV A=1", True),
                    ("/bin/sh -c #(nop)  ENV B=2 C=x y", True)]
    assert cfg["config"]["Env"] == [BASE_PATH, "A=1", "B=2", "C=x y"]


def test_env_replaces_in_place_and_expands_with_the_previous_values(backend):
    cfg, hist = built(backend, "FROM base\nENV A=0\nENV A=1 B=$A PATH=/x:$PATH\n")
    assert cfg["config"]["Env"] == ["PATH=/x:/usr/local/bin:/usr/bin:/bin", "A=1", "B=0"]
    assert hist[-1][0] == "/bin/sh -c #(nop)  ENV A=1 B=0 PATH=/x:/usr/local/bin:/usr/bin:/bin"


def test_env_legacy_form(backend):
    cfg, hist = built(backend, "FROM base\nENV GREETING hello world\n")
    assert cfg["config"]["Env"][-1] == "GREETING=hello world"
    assert hist == [("/bin/sh -c #(nop)  ENV GREETING=hello world", True)]


def test_label(backend):
    backend.add_image("labelled", Labels={"keep": "me", "over": "old"})
    image_id, _ = build(backend, 'FROM labelled\nLABEL over=new "a b"="c d" e=$HOSTNAME\n')
    cfg = backend.config(image_id)
    assert cfg["config"]["Labels"] == {"keep": "me", "over": "new", "a b": "c d", "e": ""}
    assert backend.history(image_id)[-1] == ("/bin/sh -c #(nop)  LABEL over=new a b=c d e=", True)


def test_metadata_steps_add_no_layer(backend):
    image_id, _ = build(backend, "FROM base\nENV A=1\nLABEL a=b\nCMD x\nUSER app\n")
    assert backend.config(image_id)["rootfs"] == backend.config(backend.tags["base"])["rootfs"]
    assert not backend.ops("run", "copy", "mkdir")
    assert len(backend.ops("commit")) == 4


def test_cmd_exec_form_is_shown_as_go_quotes(backend):
    cfg, hist = built(backend, 'FROM base\nCMD ["a", "b c", "d\\"e"]\n')
    assert cfg["config"]["Cmd"] == ["a", "b c", 'd"e']
    assert hist == [('/bin/sh -c #(nop)  CMD ["a" "b c" "d\\"e"]', True)]


def test_cmd_created_by_quotes_control_characters_as_go_does(backend):
    _, hist = built(backend, 'FROM base\nCMD ["\\u0001", "\\u200b", "\\u00e9"]\n')
    assert hist == [('/bin/sh -c #(nop)  CMD ["\\x01" "\\u200b" "\u00e9"]', True)]


def test_cmd_shell_form_runs_in_the_shell(backend):
    cfg, hist = built(backend, 'FROM base\nCMD echo "hi"\n')
    assert cfg["config"]["Cmd"] == ["/bin/sh", "-c", 'echo "hi"']
    assert hist == [('/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo \\"hi\\""]', True)]


def test_expose(backend):
    cfg, hist = built(backend, "FROM base\nEXPOSE 80 8000-8002/tcp 53/udp\n")
    assert cfg["config"]["ExposedPorts"] == {
        "80/tcp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}, "53/udp": {}}
    assert hist[-1][1] is True


def test_expose_splits_a_variable_into_words(backend):
    cfg = run_config(backend, 'FROM base\nARG PORTS="80 443"\nEXPOSE $PORTS\n')
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "443/tcp"}


def test_expose_created_by_with_sorted_ports(backend):
    _, hist = built(backend, "FROM base\nEXPOSE 443 53/udp 80\n")
    assert hist[-1] == ("/bin/sh -c #(nop)  EXPOSE 443 53/udp 80", True)


def test_expose_created_by_lists_ports_sorted(backend):
    _, hist = built(backend, "FROM base\nEXPOSE 80 8000-8002/tcp 53/udp\n")
    assert hist[-1] == ("/bin/sh -c #(nop)  EXPOSE 53/udp 80 8000-8002/tcp", True)


def test_expose_protocol_is_lower_cased(backend):
    assert set(run_config(backend, "FROM base\nEXPOSE 53/UDP\n")["ExposedPorts"]) == {"53/udp"}
    with pytest.raises(KadeError, match="invalid proto: bogus"):
        build(backend, "FROM base\nEXPOSE 80/bogus\n")


def test_user(backend):
    cfg, hist = built(backend, "FROM base\nARG WHO=app\nUSER $WHO:staff\n")
    assert cfg["config"]["User"] == "app:staff"
    assert hist[-1] == ("/bin/sh -c #(nop)  USER app:staff", True)


def test_volume(backend):
    cfg, hist = built(backend, 'FROM base\nVOLUME /data /logs\nVOLUME ["/json", "/form"]\n')
    assert cfg["config"]["Volumes"] == {"/data": {}, "/logs": {}, "/json": {}, "/form": {}}
    assert hist == [("/bin/sh -c #(nop)  VOLUME [/data /logs]", True),
                    ("/bin/sh -c #(nop)  VOLUME [/json /form]", True)]


def test_volume_variable_is_one_word(backend):
    cfg = run_config(backend, 'FROM base\nENV V="/a /b"\nVOLUME $V\n')
    assert cfg["Volumes"] == {"/a /b": {}}


def test_stopsignal(backend):
    cfg, hist = built(backend, "FROM base\nSTOPSIGNAL SIGUSR1\n")
    assert cfg["config"]["StopSignal"] == "SIGUSR1"
    assert hist == [("/bin/sh -c #(nop)  STOPSIGNAL SIGUSR1", True)]
    assert run_config(backend, "FROM base\nSTOPSIGNAL 9\n")["StopSignal"] == "9"


def test_stopsignal_invalid(backend):
    with pytest.raises(DockerfileError, match="Invalid signal: NOPE"):
        build(backend, "FROM base\nSTOPSIGNAL NOPE\n")


def test_shell_changes_later_steps(backend):
    image_id, _ = build(backend, 'FROM base\nSHELL ["/bin/bash", "-eu", "-c"]\n'
                                 "RUN echo hi\nCMD run-me\n")
    cfg = backend.config(image_id)["config"]
    assert cfg["Shell"] == ["/bin/bash", "-eu", "-c"]
    assert cfg["Cmd"] == ["/bin/bash", "-eu", "-c", "run-me"]
    assert runs(backend)[0].argv == ["/bin/bash", "-eu", "-c", "echo hi"]
    assert backend.history(image_id)[1:] == [
        ("/bin/bash -eu -c #(nop)  SHELL [/bin/bash -eu -c]", True),
        ("/bin/bash -eu -c echo hi", False),
        ('/bin/bash -eu -c #(nop)  CMD ["/bin/bash" "-eu" "-c" "run-me"]', True)]


def test_healthcheck(backend):
    cfg, hist = built(backend, "FROM base\nHEALTHCHECK --interval=30s --timeout=500ms "
                               "--start-period=1m30s --start-interval=2s --retries=3 "
                               "CMD curl -f http://localhost/\n")
    assert cfg["config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f http://localhost/"], "Interval": 30_000_000_000,
        "Timeout": 500_000_000, "StartPeriod": 90_000_000_000, "StartInterval": 2_000_000_000,
        "Retries": 3}
    # Go's %q of a *HealthConfig, as docker 20.10 shows it (no StartInterval yet)
    assert hist == [('/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/"]'
                     ' "30s" "500ms" "1m30s" \'\\x03\'}', True)]


def test_healthcheck_exec_form_and_none(backend):
    cfg = run_config(backend, 'FROM base\nHEALTHCHECK CMD ["/bin/check", "-q"]\n')
    assert cfg["Healthcheck"] == {"Test": ["CMD", "/bin/check", "-q"]}
    cfg, hist = built(backend, "FROM base\nHEALTHCHECK NONE\n")
    assert cfg["config"]["Healthcheck"] == {"Test": ["NONE"]}
    assert hist == [('/bin/sh -c #(nop)  HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}',
                     True)]


@pytest.mark.parametrize("flag, message", [
    ("--interval=500us", 'Interval "interval" cannot be less than 1ms'),
    ("--timeout=-1s", 'Interval "timeout" cannot be less than 1ms'),
    ("--interval=soon", 'time: invalid duration "soon"'),
])
def test_healthcheck_durations_are_checked(backend, flag, message):
    with pytest.raises(DockerfileError) as info:
        build(backend, f"FROM base\nHEALTHCHECK {flag} CMD true\n")
    assert info.value.message == message


def test_maintainer_is_the_author(backend):
    image_id, _ = build(backend, "FROM base\nMAINTAINER Jo <jo@example.com>\nRUN true\n")
    assert backend.config(image_id)["author"] == "Jo <jo@example.com>"
    assert backend.history(image_id)[1] == ("/bin/sh -c #(nop)  MAINTAINER Jo <jo@example.com>",
                                            True)


def test_author_is_not_inherited_from_the_base(backend):
    image_id, _ = build(backend, "FROM base\nMAINTAINER Jo\n")
    backend.tags["jo"] = image_id
    child, _ = build(backend, "FROM jo\nRUN true\n")
    assert "author" not in backend.config(child)


# --- ENTRYPOINT and CMD ------------------------------------------------------------------------

def test_entrypoint_resets_an_inherited_cmd(backend):
    cfg, hist = built(backend, 'FROM base\nENTRYPOINT ["/app", "--serve"]\n')
    assert cfg["config"]["Entrypoint"] == ["/app", "--serve"]
    assert cfg["config"]["Cmd"] is None
    assert hist == [('/bin/sh -c #(nop)  ENTRYPOINT ["/app" "--serve"]', True)]


def test_entrypoint_keeps_a_cmd_set_in_this_stage(backend):
    cfg = run_config(backend, 'FROM base\nCMD ["--help"]\nENTRYPOINT ["/app"]\n')
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["/app"], ["--help"])


def test_cmd_after_entrypoint(backend):
    cfg = run_config(backend, 'FROM base\nENTRYPOINT ["/app"]\nCMD ["x"]\n')
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["/app"], ["x"])


def test_entrypoint_shell_form(backend):
    cfg = run_config(backend, "FROM base\nENTRYPOINT exec /app\n")
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "exec /app"]


def test_empty_entrypoint_and_cmd(backend):
    backend.add_image("ep", Entrypoint=["/docker-entrypoint.sh"])
    image_id, _ = build(backend, "FROM ep\nENTRYPOINT []\nCMD []\n")
    cfg = backend.config(image_id)["config"]
    assert (cfg["Entrypoint"], cfg["Cmd"]) == ([], [])
    assert backend.history(image_id)[1:] == [("/bin/sh -c #(nop)  ENTRYPOINT []", True),
                                             ("/bin/sh -c #(nop)  CMD []", True)]


def test_cmd_set_in_a_parent_stage_does_not_count(backend):
    cfg = run_config(backend, 'FROM base AS one\nCMD ["x"]\nFROM one\nENTRYPOINT ["/app"]\n')
    assert cfg["Cmd"] is None


# --- ONBUILD -------------------------------------------------------------------------------------

def test_onbuild_stores_the_trigger_text(backend):
    cfg, hist = built(backend, "FROM base\nONBUILD RUN echo hi > /hi\nonbuild   COPY a.txt /x/\n")
    assert cfg["config"]["OnBuild"] == ["RUN echo hi > /hi", "COPY a.txt /x/"]
    assert hist == [("/bin/sh -c #(nop)  ONBUILD RUN echo hi > /hi", True),
                    ("/bin/sh -c #(nop)  ONBUILD COPY a.txt /x/", True)]
    assert not backend.ops("run", "copy")


def test_onbuild_triggers_run_in_a_child_build_and_are_cleared(backend, context):
    parent, _ = build(backend, "FROM base\nONBUILD RUN echo hi > /hi\nONBUILD COPY a.txt /x/\n")
    backend.tags["parent"] = parent
    child, _ = build(backend, "FROM parent\nRUN echo child > /child\n", context)
    assert [r.argv[-1] for r in runs(backend)] == ["echo hi > /hi", "echo child > /child"]
    assert [c[2].dest for c in backend.ops("copy")] == ["/x/"]
    cfg = backend.config(child)
    assert not cfg["config"].get("OnBuild")
    created = [h for h, _ in backend.history(child)]
    assert created[-3:] == ["/bin/sh -c echo hi > /hi",
                            created[-2], "/bin/sh -c echo child > /child"]
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /x/ ", created[-2])
    files = backend.files(child)
    assert files["/hi"].data == b"hi\n" and files["/x/a.txt"].data == b"a\n"


def test_onbuild_triggers_fire_once(backend, context):
    parent, _ = build(backend, "FROM base\nONBUILD RUN echo hi > /hi\n")
    backend.tags["parent"] = parent
    backend.tags["child"], _ = build(backend, "FROM parent\n")
    backend.calls.clear()
    build(backend, "FROM child\nRUN true\n")
    assert [r.argv[-1] for r in runs(backend)] == ["true"]


# --- ARG scoping -----------------------------------------------------------------------------------

def test_meta_arg_is_not_visible_in_a_stage_unless_redeclared(backend):
    image_id, _ = build(backend, "ARG V=1\nFROM base\nRUN echo $V\n")
    [req] = runs(backend)
    assert not any(e.startswith("V=") for e in req.env)
    assert backend.history(image_id)[-1] == ("/bin/sh -c echo $V", False)


def test_redeclared_meta_arg_takes_its_value(backend):
    image_id, _ = build(backend, "ARG V=1\nFROM base\nARG V\nRUN echo $V\n")
    [req] = runs(backend)
    assert "V=1" in req.env
    assert backend.history(image_id)[-2:] == [("/bin/sh -c #(nop)  ARG V", True),
                                              ("|1 V=1 /bin/sh -c echo $V", False)]


def test_redeclared_meta_arg_without_value_stays_unset(backend):
    image_id, _ = build(backend, "ARG V\nFROM base\nARG V\nRUN echo $V\n")
    assert backend.history(image_id)[-1] == ("/bin/sh -c echo $V", False)


def test_run_with_build_args_in_scope(backend):
    image_id, _ = build(backend, "FROM base\nARG X=1\nARG A=2\nRUN echo $X\n")
    assert backend.history(image_id)[-1] == ("|2 A=2 X=1 /bin/sh -c echo $X", False)
    [req] = runs(backend)
    assert req.env == [BASE_PATH, "A=2", "X=1"]
    assert req.argv == ["/bin/sh", "-c", "echo $X"]


def test_arg_without_value_is_not_in_scope(backend):
    image_id, _ = build(backend, "FROM base\nARG X\nRUN true\n")
    assert backend.history(image_id)[-1] == ("/bin/sh -c true", False)


def test_env_overrides_arg(backend):
    image_id, _ = build(backend, "FROM base\nARG X=1\nENV X=2\nRUN echo $X\n")
    [req] = runs(backend)
    assert "X=2" in req.env and "X=1" not in req.env
    assert backend.history(image_id)[-1] == ("/bin/sh -c echo $X", False)


def test_build_arg_overrides_a_default(backend):
    image_id, progress = build(backend, "FROM base\nARG X=1\nRUN echo $X\n",
                               build_args={"X": "5"})
    assert backend.history(image_id)[-2:] == [("/bin/sh -c #(nop)  ARG X=1", True),
                                              ("|1 X=5 /bin/sh -c echo $X", False)]
    assert "X=5" in runs(backend)[0].env
    assert progress.warnings == []


def test_args_are_used_in_substitution(backend):
    cfg = run_config(backend, "FROM base\nARG DIR=/srv\nENV HOME=$DIR/home\nLABEL d=${DIR}\n",
                     build_args={"DIR": "/opt"})
    assert "HOME=/opt/home" in cfg["Env"] and cfg["Labels"] == {"d": "/opt"}


def test_args_do_not_cross_stages(backend):
    build(backend, "FROM base AS one\nARG X=1\nRUN one\nFROM one\nRUN echo $X\n")
    assert [r.env for r in runs(backend)] == [[BASE_PATH, "X=1"], [BASE_PATH]]


def test_arg_history_shows_the_expanded_default(backend):
    image_id, _ = build(backend, "FROM base\nARG A=1\nARG B=$A\n")
    assert backend.history(image_id)[-1] == ("/bin/sh -c #(nop)  ARG B=1", True)


def test_unused_build_args_are_warned_about(backend):
    _, progress = build(backend, "ARG META\nFROM base\nARG USED\nRUN true\n",
                        build_args={"USED": "1", "META": "2", "ZZZ": "3", "AAA": "4",
                                    "HTTP_PROXY": "http://proxy:3128"})
    assert progress.warnings == ["One or more build-args [AAA ZZZ] were not consumed"]


def test_proxy_build_args_reach_run(backend):
    build(backend, "FROM base\nRUN true\n", build_args={"HTTP_PROXY": "http://proxy:3128"})
    assert "HTTP_PROXY=http://proxy:3128" in runs(backend)[0].env


def test_proxy_build_args_are_not_in_created_by(backend):
    image_id, _ = build(backend, "FROM base\nRUN true\n",
                        build_args={"HTTP_PROXY": "http://user:secret@proxy:3128"})
    assert backend.history(image_id)[-1] == ("|0 /bin/sh -c true", False)


def test_declared_proxy_args_are_in_created_by(backend):
    image_id, _ = build(backend, "FROM base\nARG http_proxy\nRUN true\n",
                        build_args={"http_proxy": "http://proxy:3128"})
    assert backend.history(image_id)[-1] == ("|1 http_proxy=http://proxy:3128 /bin/sh -c true",
                                             False)


# --- PATH ----------------------------------------------------------------------------------------

def test_path_is_added_from_scratch(backend):
    image_id, _ = build(backend, "FROM scratch\nENV A=1\n")
    cfg = backend.config(image_id)
    assert cfg["config"]["Env"] == [f"PATH={DEFAULT_PATH}", "A=1"]
    assert backend.history(image_id) == [("/bin/sh -c #(nop)  ENV A=1", True)]
    assert cfg["rootfs"]["diff_ids"] == []


def test_path_is_added_when_the_base_has_none(backend):
    backend.add_image("nopath", env=["LANG=C"])
    cfg = run_config(backend, "FROM nopath\nENV A=1\n")
    assert cfg["Env"] == ["LANG=C", f"PATH={DEFAULT_PATH}", "A=1"]


def test_path_of_the_base_is_kept(backend):
    assert run_config(backend, "FROM base\nENV A=1\n")["Env"] == [BASE_PATH, "A=1"]


def test_run_on_scratch_gets_the_default_path(backend):
    build(backend, "FROM scratch\nRUN true\n")
    assert runs(backend)[0].env == [f"PATH={DEFAULT_PATH}"]


# --- RUN -----------------------------------------------------------------------------------------

def test_run_adds_a_layer(backend):
    image_id, progress = build(backend, "FROM base\nRUN echo hi > /greeting\n")
    cfg = backend.config(image_id)
    assert backend.history(image_id)[-1] == ("/bin/sh -c echo hi > /greeting", False)
    assert len(cfg["rootfs"]["diff_ids"]) == 2
    assert backend.files(image_id)["/greeting"].data == b"hi\n"
    assert progress.output == [("[2/2] RUN echo hi > /greeting", b"ran echo hi > /greeting\n")]


def test_run_exec_form(backend):
    image_id, _ = build(backend, 'FROM base\nRUN ["echo", "hi there"]\n')
    assert runs(backend)[0].argv == ["echo", "hi there"]
    assert backend.history(image_id)[-1] == ("echo hi there", False)


def test_run_gets_the_stage_user_workdir_and_network(backend):
    build(backend, "FROM base\nUSER app\nWORKDIR /srv\nRUN --network=none true\nRUN true\n",
          network="host")
    first, second = runs(backend)
    assert (first.user, first.workdir, first.network) == ("app", "/srv", "none")
    assert second.network == "host"


def test_run_mounts_are_resolved(backend):
    build(backend, "FROM base\nWORKDIR /w\nRUN --mount=type=cache,target=cache "
                   "--mount=type=tmpfs,target=/t true\n")
    [req] = runs(backend)
    assert req.mounts == [{"type": "cache", "target": "/w/cache", "id": "cache"},
                          {"type": "tmpfs", "target": "/t"}]


def test_cache_mount_id_is_the_clean_target(backend):
    build(backend, "FROM base\nRUN --mount=type=cache,target=/root/.cache/ true\n")
    assert runs(backend)[0].mounts[0]["id"] == "/root/.cache"


def test_failing_run_stops_the_build(backend):
    with pytest.raises(StepFailed) as info:
        build(backend, "FROM base\nRUN exit 3\nRUN never\n")
    assert info.value.code == 3
    assert [r.argv[-1] for r in runs(backend)] == ["exit 3"]


def test_failing_run_is_reported_on_its_step(backend):
    progress = Progress()
    b = Builder(backend, BuildOptions(dockerfile=b"FROM base\nRUN exit 2\n"), progress)
    with pytest.raises(StepFailed):
        b.build()
    assert progress.errors == [("[2/2] RUN exit 2", 'process "/bin/sh -c exit 2" did not '
                                "complete successfully: exit code: 2")]


def test_unknown_base_image(backend):
    progress = Progress()
    with pytest.raises(NotFound):
        Builder(backend, BuildOptions(dockerfile=b"FROM nope\n"), progress).build()
    assert progress.errors[0][0] == "[1/1] FROM nope"


def test_step_titles(backend):
    _, progress = build(backend, "FROM base\nENV A=1\nRUN true\n")
    assert progress.titles == ["[1/3] FROM base", "[2/3] ENV A=1", "[3/3] RUN true"]


# --- WORKDIR -------------------------------------------------------------------------------------

def test_workdir_makes_its_directory(backend):
    image_id, _ = build(backend, "FROM base\nWORKDIR /app\n")
    assert backend.config(image_id)["config"]["WorkingDir"] == "/app"
    assert [c[2] for c in backend.ops("mkdir")] == ["/app"]
    created_by, empty = backend.history(image_id)[-1]
    assert created_by.endswith("WORKDIR /app") and empty is False
    assert backend.files(image_id)["/app"].kind == "dir"


def test_workdir_that_exists_adds_an_empty_layer(backend):
    image_id, _ = build(backend, "FROM base\nWORKDIR /etc\n")
    assert backend.history(image_id)[-1][1] is True
    assert len(backend.config(image_id)["rootfs"]["diff_ids"]) == 1


def test_workdir_created_by(backend):
    image_id, _ = build(backend, "FROM base\nWORKDIR /app\n")
    assert backend.history(image_id)[-1][0] == "/bin/sh -c #(nop) WORKDIR /app"


@pytest.mark.parametrize("steps, expected", [
    (["sub"], "/sub"),
    (["/app", "sub"], "/app/sub"),
    (["/app", "sub", "../other"], "/app/other"),
    (["/app/", "./x/"], "/app/x"),
    (["/a", "/b"], "/b"),
    (["/app", "$D/x"], "/app/lib/x"),
])
def test_workdir_relative_joins(backend, steps, expected):
    text = "FROM base\nENV D=lib\n" + "".join(f"WORKDIR {s}\n" for s in steps)
    assert run_config(backend, text)["WorkingDir"] == expected


# --- COPY ------------------------------------------------------------------------------------------

def test_copy_a_file(backend, context):
    image_id, _ = build(backend, "FROM base\nCOPY a.txt /app/a.txt\n", context)
    [(_, _, req)] = backend.ops("copy")
    assert (req.dest, req.rename, req.dir_owner) == ("/app/a.txt", ("a.txt", "a.txt"), (0, 0))
    created_by, empty = backend.history(image_id)[-1]
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /app/a\.txt ", created_by)
    assert not empty
    e = backend.files(image_id)["/app/a.txt"]
    assert (e.data, e.mode & 0o7777, e.uid, e.gid) == (b"a\n", 0o644, 0, 0)


def test_copy_a_directory_and_several_sources(backend, context):
    image_id, _ = build(backend, "FROM base\nWORKDIR /w\nCOPY src ./\nCOPY a.txt b.txt out/\n",
                        context)
    copies = [c[2] for c in backend.ops("copy")]
    assert [c.dest for c in copies] == ["/w/", "/w/out/"]
    created = [h for h, _ in backend.history(image_id)[-2:]]
    # history keeps a relative destination as written, as docker 20.10 does
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY dir:[0-9a-f]{64} in \./ ", created[0])
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY multi:[0-9a-f]{64} in out/ ", created[1])
    files = backend.files(image_id)
    assert files["/w/main.c"].data == b"int main;\n" and files["/w/out/b.txt"].data == b"b\n"


def test_copy_several_sources_needs_a_directory(backend, context):
    with pytest.raises(DockerfileError, match="destination must be a directory and end with a /"):
        build(backend, "FROM base\nCOPY a.txt b.txt /out\n", context)


def test_copy_chown(backend, context):
    image_id, _ = build(backend, "FROM base\nCOPY --chown=app:staff a.txt /home/app/\n", context)
    [(_, _, req)] = backend.ops("copy")
    assert req.dir_owner == (1000, 50)
    e = backend.files(image_id)["/home/app/a.txt"]
    assert (e.uid, e.gid) == (1000, 50)


def test_copy_chown_is_in_created_by(backend, context):
    image_id, _ = build(backend, "FROM base\nCOPY --chown=app:staff a.txt /x/\n", context)
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY --chown=app:stafffile:[0-9a-f]{64} in /x/ ",
                        backend.history(image_id)[-1][0])


def test_copy_without_context(backend):
    with pytest.raises(InvalidArgument, match="this build has no context"):
        build(backend, "FROM base\nCOPY a.txt /\n")


def test_copy_from_a_stage_by_name_and_index(backend):
    image_id, _ = build(backend, "FROM base AS build\nRUN echo built > /out/app\n"
                                 "FROM base\nCOPY --from=build /out/app /usr/bin/app\n"
                                 "COPY --from=0 /out/app /copy2\n")
    assert [c[2] for c in backend.ops("export")] == [["/out/app"], ["/out/app"]]
    files = backend.files(image_id)
    assert files["/usr/bin/app"].data == b"built\n" and files["/copy2"].data == b"built\n"


def test_copy_from_an_image(backend):
    backend.add_image("tools", files={"/opt/tool": Entry("file", b"tool", 0o755)})
    image_id, _ = build(backend, "FROM base\nCOPY --from=tools /opt/tool /bin/\n")
    e = backend.files(image_id)["/bin/tool"]
    assert e.data == b"tool" and e.mode & 0o777 == 0o755


def test_copy_from_nothing(backend):
    with pytest.raises(DockerfileError, match="no build stage and no image of that name"):
        build(backend, "FROM base\nCOPY --from=nowhere /x /x\n")


# --- the cache ---------------------------------------------------------------------------------

CACHED = """\
FROM base
ENV A=1
COPY a.txt /app/
RUN echo built > /built
COPY b.txt /app/
CMD ["x"]
"""


def test_same_dockerfile_twice_is_all_cache(backend, context):
    first, _ = build(backend, CACHED, context)
    backend.calls.clear()
    second, progress = build(backend, CACHED, context)
    assert second == first
    assert progress.cached_steps == ["[2/6] ENV A=1", "[3/6] COPY a.txt /app/",
                                     "[4/6] RUN echo built > /built", "[5/6] COPY b.txt /app/",
                                     '[6/6] CMD ["x"]']
    assert backend.ops("run", "copy", "mkdir", "commit") == []


def test_a_changed_copy_source_reruns_that_step_and_later_ones(backend, context):
    first, _ = build(backend, CACHED, context)
    with open(os.path.join(context.root, "a.txt"), "w") as f:
        f.write("A\n")
    backend.calls.clear()
    second, progress = build(backend, CACHED, context)
    assert second != first
    assert progress.cached_steps == ["[2/6] ENV A=1"]
    assert [c[0] for c in backend.ops("run", "copy", "commit")] == ["copy", "run", "copy",
                                                                     "commit"]
    assert backend.files(second)["/app/a.txt"].data == b"A\n"


def test_a_changed_mode_is_a_changed_source(backend, context):
    build(backend, CACHED, context)
    os.chmod(os.path.join(context.root, "b.txt"), 0o600)
    _, progress = build(backend, CACHED, context)
    assert progress.cached_steps == ["[2/6] ENV A=1", "[3/6] COPY a.txt /app/",
                                     "[4/6] RUN echo built > /built"]


def test_a_touched_source_is_still_cached(backend, context):
    first, _ = build(backend, CACHED, context)
    os.utime(os.path.join(context.root, "a.txt"), (1, 1))
    second, progress = build(backend, CACHED, context)
    assert second == first and len(progress.cached_steps) == 5


def test_no_cache(backend, context):
    build(backend, CACHED, context)
    backend.calls.clear()
    _, progress = build(backend, CACHED, context, no_cache=True)
    assert progress.cached_steps == []
    assert [c[0] for c in backend.ops("run", "copy", "commit")] == ["commit", "copy", "run",
                                                                     "copy", "commit"]


def test_a_changed_build_arg_misses_the_cache_of_run(backend):
    text = "FROM base\nARG V=1\nRUN echo $V\n"
    build(backend, text)
    _, progress = build(backend, text, build_args={"V": "2"})
    assert "[3/3] RUN echo $V" not in progress.cached_steps


def test_a_changed_proxy_is_still_cached(backend):
    text = "FROM base\nRUN true\n"
    first, _ = build(backend, text, build_args={"HTTP_PROXY": "http://a:3128"})
    second, progress = build(backend, text, build_args={"HTTP_PROXY": "http://b:3128"})
    assert second == first


# --- --label, --platform ---------------------------------------------------------------------

def test_label_option_is_a_last_label_step(backend):
    image_id, _ = build(backend, "FROM base\nCMD x\n", labels={"b": "2", "a": "1"})
    cfg = backend.config(image_id)
    assert cfg["config"]["Labels"] == {"a": "1", "b": "2"}
    created_by, empty = backend.history(image_id)[-1]
    assert created_by.startswith("/bin/sh -c #(nop)  LABEL ") and empty


def test_label_option_goes_to_the_target_stage(backend):
    image_id, _ = build(backend, "FROM base AS one\nCMD x\nFROM base AS two\n",
                        labels={"a": "1"}, target="one")
    assert backend.config(image_id)["config"]["Labels"] == {"a": "1"}


def test_label_option_is_one_step_per_label_sorted(backend):
    image_id, _ = build(backend, "FROM base\n", labels={"b": "2", "a": "1"})
    assert backend.history(image_id)[-2:] == [("/bin/sh -c #(nop)  LABEL a=1", True),
                                              ("/bin/sh -c #(nop)  LABEL b=2", True)]


def test_label_option_is_not_expanded(backend):
    cfg = run_config(backend, "FROM base\nENV A=1\n", labels={"v": "$A"})
    assert cfg["Labels"]["v"] == "$A"


def other_arch():
    return "s390x" if host_arch() != "s390x" else "amd64"


def test_platform_of_another_arch_is_refused(backend):
    with pytest.raises(InvalidArgument, match=f'platform "linux/{other_arch()}" is not supported'):
        build(backend, "FROM base\n", platform=f"linux/{other_arch()}")
    assert backend.ops("base") == []


def test_from_platform_of_another_arch_is_refused(backend):
    with pytest.raises(InvalidArgument, match="is not supported"):
        build(backend, f"FROM --platform=linux/{other_arch()} base\n")


def test_platform_of_the_host_is_fine(backend):
    image_id, _ = build(backend, f"FROM --platform=linux/{host_arch()} base\nENV A=1\n",
                        platform=f"linux/{host_arch()}")
    assert image_id in backend.images


# --- several stages ----------------------------------------------------------------------------

PARALLEL = """\
FROM base AS a
RUN echo A > /a.txt
FROM base AS b
RUN echo B > /b.txt
FROM base AS unused
RUN echo never > /never
FROM base
COPY --from=a /a.txt /
COPY --from=b /b.txt /
"""


def test_independent_stages_build_in_parallel(backend):
    # each of a's and b's RUN waits for the other at a barrier: it only passes when
    # both run at once (the timeout only keeps a broken build from hanging)
    barrier = threading.Barrier(2, timeout=30)

    def meet(req):
        if req.argv[-1] in ("echo A > /a.txt", "echo B > /b.txt"):
            barrier.wait()
    backend.on_run = meet
    image_id, _ = build(backend, PARALLEL)
    files = backend.files(image_id)
    assert (files["/a.txt"].data, files["/b.txt"].data) == (b"A\n", b"B\n")
    assert "/never" not in files
    threads = {req.argv[-1]: name for _, name, req in backend.ops("run")}
    assert set(threads) == {"echo A > /a.txt", "echo B > /b.txt"}  # not the unused stage
    assert threads["echo A > /a.txt"] != threads["echo B > /b.txt"]
    assert backend.ops("before_threads")


def test_a_stage_waits_for_the_stages_it_needs(backend):
    build(backend, PARALLEL)
    order = [c[0] for c in backend.ops("run", "copy")]
    assert order[:2] == ["run", "run"] and order[2:] == ["copy", "copy"]


def test_multi_stage_step_titles_name_the_stage(backend):
    _, progress = build(backend, "FROM base AS one\nRUN echo 1 > /1\n"
                                 "FROM base\nCOPY --from=one /1 /\n")
    assert sorted(progress.titles) == ["[one 1/2] FROM base", "[one 2/2] RUN echo 1 > /1",
                                       "[stage-1 1/2] FROM base",
                                       "[stage-1 2/2] COPY --from=one /1 /"]


def test_target_builds_only_what_it_needs(backend):
    image_id, _ = build(backend, PARALLEL, target="b")
    assert [r.argv[-1] for r in runs(backend)] == ["echo B > /b.txt"]
    assert backend.files(image_id)["/b.txt"].data == b"B\n"


def test_unknown_target(backend):
    with pytest.raises(DockerfileError, match="failed to reach build target nope"):
        build(backend, PARALLEL, target="nope")


def test_from_a_stage_continues_its_image(backend):
    image_id, _ = build(backend, "FROM base AS one\nENV A=1\nFROM one\nENV B=2\n")
    assert backend.config(image_id)["config"]["Env"] == [BASE_PATH, "A=1", "B=2"]
    assert [h for h, _ in backend.history(image_id)[1:]] == ["/bin/sh -c #(nop)  ENV A=1",
                                                             "/bin/sh -c #(nop)  ENV B=2"]


def test_a_failing_stage_fails_the_build(backend):
    with pytest.raises(StepFailed):
        build(backend, "FROM base AS a\nRUN exit 1\nFROM base AS b\nRUN true\n"
                       "FROM base\nCOPY --from=a /x /x\nCOPY --from=b /y /y\n")
    assert backend.ops("copy") == []


@pytest.mark.parametrize("text", ["", "# nothing\n", "\n\n"])
def test_empty_dockerfile(backend, text):
    with pytest.raises(DockerfileError):
        build(backend, text)
    assert backend.calls == []


# --- SOURCE_DATE_EPOCH ------------------------------------------------------------------------

def test_source_date_epoch_sets_created_and_history_times(backend):
    image_id, _ = build(backend, "FROM base\nENV A=1\nRUN true\n", source_date_epoch=1700000000)
    cfg = backend.config(image_id)
    assert cfg["created"] == "2023-11-14T22:13:20Z"
    assert [h["created"] for h in cfg["history"]] == ["2020-01-01T00:00:00Z"] + \
        ["2023-11-14T22:13:20Z"] * 2


def test_source_date_epoch_builds_do_not_share_cache_with_plain_ones(backend):
    build(backend, "FROM base\nENV A=1\n")
    _, progress = build(backend, "FROM base\nENV A=1\n", source_date_epoch=1700000000)
    assert progress.cached_steps == []
    _, again = build(backend, "FROM base\nENV A=1\n", source_date_epoch=1700000000)
    assert again.cached_steps == ["[2/2] ENV A=1"]
