"""The builder: stages of checked instructions -> images, step by step, with a cache.

Each instruction of a stage is one step that turns the stage's current image into
the next, as docker's legacy builder does it: metadata instructions (ENV, CMD,
LABEL, ARG, ...) make an image with one more history entry marked `empty_layer`;
RUN, COPY, ADD and WORKDIR run on the engine through the `Backend` protocol and
add a layer when they changed the file system.

A step's cache key is a digest of its parent image, its text after substitution
(docker's `created_by`, which names COPY's sources by a digest of their content
and metadata), the build args in scope and the runtime config it runs with. A
key found in the backend's cache gives the step's image without running it; a
changed source changes that step's key and so every key after it.

The engine satisfies Backend (engine/build.py); unit tests use a fake.
"""

from __future__ import annotations

import hashlib
import json
import os
import _thread
import time
from kade.util.record import field, record as dataclass

from kade.build import stages as stages_mod
from kade.build.backend import CopyRequest, RunRequest
from kade.build.context import Context, Source, has_wildcards
from kade.build.instructions import Command, check_one, parse_mount
from kade.build.parser import DockerfileError, parse
from kade.build.shell import Lexer
from kade.errors import FailedPrecondition, InvalidArgument, KadeError

TYPE_CHECKING = False  # typing costs ~5 ms on every `kade build`
if TYPE_CHECKING:
    from typing import Callable

    from kade.build.backend import Backend, Progress

__all__ = ["BuildOptions", "Builder", "DEFAULT_PATH", "PROXY_ARGS"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


@dataclass
class BuildOptions:
    dockerfile: bytes
    dockerfile_name: str = "Dockerfile"
    context: Context | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    cache_from: list[str] = field(default_factory=list)  # local images whose steps count
    pull: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "default"
    secrets: dict[str, str] = field(default_factory=dict)  # id -> host file
    platform: str | None = None
    # SOURCE_DATE_EPOCH (or --timestamp): created times are this moment and no
    # file in a new layer is later, so equal inputs give equal digests
    source_date_epoch: int | None = None


class _State:
    """A stage as it is built: its image, config and the ARGs in its scope."""

    def __init__(self, stage: stages_mod.Stage, image_id: str | None, config: dict) -> None:
        self.stage = stage
        self.image_id = image_id
        self.config = config
        self.args: dict[str, str | None] = {}
        self.cmd_set = False
        self.step = 1

    @property
    def run_config(self) -> dict:
        return self.config.setdefault("config", {})

    def env_map(self) -> dict[str, str]:
        out = {}
        for item in self.run_config.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def shell(self) -> list[str]:
        return list(self.run_config.get("Shell") or DEFAULT_SHELL)


class Builder:
    def __init__(self, backend: Backend, opts: BuildOptions, progress: Progress) -> None:
        self.backend = backend
        self.opts = opts
        self.progress = progress
        self.consumed: set[str] = set()
        self._results: dict[int, _State] = {}
        self._cache_images: list[tuple[str, dict]] | None = None
        self._lock = _thread.allocate_lock()
        self._cancelled = _Flag()
        self.escape = "\\"
        from kade.oci import platform
        arch = platform.host_arch()
        self.platform = f"linux/{arch}"
        self.builtin = {"TARGETPLATFORM": self.platform, "TARGETOS": "linux",
                        "TARGETARCH": arch, "TARGETVARIANT": "",
                        "BUILDPLATFORM": self.platform, "BUILDOS": "linux",
                        "BUILDARCH": arch, "BUILDVARIANT": ""}

    # --- the whole build ------------------------------------------------------
    def build(self) -> str:
        """Build the target stage; returns its image id."""
        self._check_platform(self.opts.platform)
        df = parse(self.opts.dockerfile, self.opts.dockerfile_name)
        self.escape = df.escape
        if not df.instructions:
            raise DockerfileError(self.opts.dockerfile_name, 0,
                                  f"the Dockerfile ({self.opts.dockerfile_name}) cannot be empty")
        commands = [check_one(n, self.opts.dockerfile_name) for n in df.instructions]
        plan = stages_mod.plan(commands, self.opts.build_args, df.escape,
                               builtin=self.builtin)
        self.plan = plan
        self.consumed |= {n.partition("=")[0] for c in plan.meta_args for n in c.args}
        todo = stages_mod.needed(plan, self.opts.target)
        for k in sorted(self.opts.labels):  # docker: one LABEL step per --label, by key
            todo[-1].commands.append(self._label_command(todo[-1], k, self.opts.labels[k]))
        final = self._run_stages(todo)
        unused = sorted(set(self.opts.build_args) - self.consumed - set(PROXY_ARGS))
        if unused:
            self.progress.warn("One or more build-args [" + " ".join(unused) +
                               "] were not consumed")
        if final.image_id is None:
            final.image_id = self.backend.commit(None, final.config)
        return final.image_id

    def _label_command(self, stage: stages_mod.Stage, key: str, value: str) -> Command:
        """A --label as docker's legacy builder appends it: a LABEL instruction whose
        key and value are taken as given, never expanded."""
        return Command("LABEL", [key, value, "="], original=f"LABEL {key}={value}", line=0,
                       filename=stage.from_cmd.filename, expand=False)

    def _run_stages(self, todo: list[stages_mod.Stage]) -> _State:
        if len(todo) == 1:
            return self._build_stage(todo[0])
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
        self.backend.before_threads()
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            futures = [pool.submit(self._build_stage_after, s) for s in todo]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f.exception() for f in futures if f in done and f.exception()]
                if failed:
                    raise failed[0]
            except BaseException:
                # the first failure (or Ctrl-C) ends the build: kill the other
                # stages' running steps, or leaving the pool would wait for them
                self.cancel()
                raise
        return self._results[todo[-1].index]

    def _build_stage_after(self, stage: stages_mod.Stage) -> _State:
        for dep in sorted(stage.deps):
            self._wait_for(dep)
        return self._build_stage(stage)

    def cancel(self) -> None:
        self._cancelled.set()
        self.backend.cancel()

    # --- one stage -------------------------------------------------------------
    def _build_stage(self, stage: stages_mod.Stage) -> _State:
        total = len(stage.commands) + 1
        st = self._from(stage, total)
        for c in stage.commands:
            if self._cancelled.is_set():
                raise FailedPrecondition("build cancelled")
            self._step(st, c, total)
        with self._lock:
            self._results[stage.index] = st
        return st

    def _prefix(self, stage: stages_mod.Stage, step: int, total: int) -> str:
        """The step log's "[2/5]", or "[build 2/5]" when there are several stages."""
        where = f"{stage.label} " if len(self.plan.stages) > 1 else ""
        return f"[{where}{step}/{total}]"

    def _from(self, stage: stages_mod.Stage, total: int) -> _State:
        self._check_platform(stage.platform)
        dep = stages_mod.find(self.plan.stages, stage.base, stage.index)
        if dep is not None and not stage.base.isdigit():
            self._wait_for(dep.index)
            parent = self._results[dep.index]
            st = _State(stage, parent.image_id, json.loads(json.dumps(parent.config)))
        elif stage.base.lower() == "scratch":
            from kade.oci import platform
            st = _State(stage, None, {**platform.host(), "config": {},
                                      "rootfs": {"type": "layers", "diff_ids": []},
                                      "history": []})
        else:
            v = self.progress.start(f"{self._prefix(stage, 1, total)} FROM {stage.base}")
            try:
                image_id, config = self.backend.base(stage.base, pull=self.opts.pull)
            except KadeError as e:
                self.progress.error(v, str(e))
                raise
            self.progress.done(v)
            st = _State(stage, image_id, config)
        # a commit's, not an image's; the author is the stage's own MAINTAINER
        for key in ("container", "container_config", "author"):
            st.config.pop(key, None)
        if "PATH" not in st.env_map():  # docker's setDefaultPath, scratch included
            st.run_config["Env"] = list(st.run_config.get("Env") or []) + \
                [f"PATH={DEFAULT_PATH}"]
        st.step = 2
        triggers = list(st.run_config.get("OnBuild") or [])
        if triggers:
            st.run_config["OnBuild"] = None
            for text in triggers:
                node = parse(text, self.opts.dockerfile_name).instructions[0]
                self._step(st, check_one(node, self.opts.dockerfile_name), total,
                           trigger=True)
                st.step -= 1  # a trigger is not one of the stage's own steps
        return st

    def _wait_for(self, index: int) -> None:
        while index not in self._results:
            if self._cancelled.wait(0.01):
                raise FailedPrecondition("build cancelled")

    def _check_platform(self, platform: str | None) -> None:
        if not platform:
            return
        want = platform.lower().split("/")
        if want[0] != "linux" or (len(want) > 1 and want[1] != self.platform.split("/")[1]):
            raise InvalidArgument(f'platform "{platform}" is not supported: kade builds for '
                                  f'the host platform only ({self.platform})')

    # --- one step --------------------------------------------------------------
    def _step(self, st: _State, c: Command, total: int, *, trigger: bool = False) -> None:
        handler = getattr(self, "_do_" + c.cmd.lower())
        prefix = self._prefix(st.stage, st.step, total)
        title = f"{prefix} ONBUILD {c.original}" if trigger else f"{prefix} {c.original}"
        handler(st, c, title)
        st.step += 1

    def _env(self, st: _State) -> dict[str, str]:
        """What $NAME means in this stage: ARGs, overridden by ENV."""
        env = {k: v for k, v in st.args.items() if v is not None}
        env.update(st.env_map())
        return env

    def _word(self, st: _State, word: str) -> str:
        return Lexer(self.escape).process_word(word, self._env(st))

    def _words(self, st: _State, word: str) -> list[str]:
        return Lexer(self.escape).process_words(word, self._env(st))

    def _build_args_in_scope(self, st: _State, *, proxies: bool = True) -> list[str]:
        """Docker's FilterAllowed: ARGs with a value that ENV does not override,
        and (for RUN's environment, never history or cache keys: they may hold
        credentials and a changed proxy is no reason to rebuild) the proxy args
        given on the command line that no ARG declares."""
        env = st.env_map()
        out = [f"{k}={v}" for k, v in st.args.items() if v is not None and k not in env]
        if proxies:
            out += [f"{k}={self.opts.build_args[k]}" for k in PROXY_ARGS
                    if k in self.opts.build_args and k not in st.args and k not in env]
        return sorted(out)

    def _key(self, st: _State, created_by: str, extra: object = None) -> str:
        args = self._build_args_in_scope(st, proxies=False)
        key = [st.image_id, created_by, st.run_config, args, extra]
        if self.opts.source_date_epoch is not None:  # its steps differ in times only
            key.append({"source_date_epoch": self.opts.source_date_epoch})
        text = json.dumps(key, sort_keys=True)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def _commit_step(self, st: _State, title: str, created_by: str,
                     action: Callable[[dict, int], str] | None, extra: object = None) -> None:
        """Look the step up in the cache, else run action(config, vertex) (which adds
        a layer or not) or commit the config (an empty layer)."""
        v = self.progress.start(title)
        config = json.loads(json.dumps(st.config))
        key = self._key(st, created_by, extra)
        found = None if self.opts.no_cache else self.backend.cached(key)
        if found is None and not self.opts.no_cache and self.opts.cache_from:
            found = self._from_cache_images(st, created_by)
            if found is not None:
                self.backend.remember(key, found)
        if found is not None:
            st.image_id = found
            st.config = self.backend.config(found)
            self.progress.cached(v)
            return
        now = self._created()
        config["created"] = now
        entry = {"created": now, "created_by": created_by}
        if action is None:
            entry["empty_layer"] = True
        config["history"] = list(config.get("history") or []) + [entry]
        try:
            image_id = action(config, v) if action else self.backend.commit(st.image_id, config)
        except KadeError as e:
            self.progress.error(v, str(e))
            raise
        self.backend.remember(key, image_id)
        st.image_id = image_id
        st.config = self.backend.config(image_id)
        self.progress.done(v)

    def _created(self) -> str:
        """A new step's time: now, or the epoch as Go's RFC3339Nano writes whole
        seconds (buildx: "2023-11-14T22:13:20Z")."""
        epoch = self.opts.source_date_epoch
        if epoch is None:
            from kade.util.ids import now_rfc3339
            return now_rfc3339()
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))

    def _from_cache_images(self, st: _State, created_by: str) -> str | None:
        """--cache-from, as docker's legacy builder reads it: an image whose history
        and layers start with the current image's, and whose next history entry was
        made by this very step, gives the step's result (that entry, and its layer
        unless empty)."""
        if self._cache_images is None:
            self._cache_images = []
            for ref in self.opts.cache_from:
                try:
                    image_id, config = self.backend.base(ref, pull=False, local=True)
                except KadeError:
                    self.progress.warn(f"--cache-from {ref}: no such image here; ignored")
                    continue
                self._cache_images.append((image_id, config))
        history = list(st.config.get("history") or [])
        diff_ids = list((st.config.get("rootfs") or {}).get("diff_ids") or [])
        n = len(history)
        for image_id, config in self._cache_images:
            theirs = config.get("history") or []
            their_ids = (config.get("rootfs") or {}).get("diff_ids") or []
            if len(theirs) <= n or theirs[n].get("created_by") != created_by:
                continue
            if [h.get("created_by") for h in theirs[:n]] != [h.get("created_by") for h in history] \
                    or their_ids[:len(diff_ids)] != diff_ids:
                continue
            entry = theirs[n]
            layer = None if entry.get("empty_layer") else len(diff_ids)
            if layer is not None and layer >= len(their_ids):
                continue
            config_out = json.loads(json.dumps(st.config))
            config_out["history"] = history + [entry]
            config_out["created"] = entry.get("created", config_out.get("created"))
            return self.backend.reuse_layer(st.image_id, config_out, image_id, layer)
        return None

    def _metadata(self, st: _State, title: str, comment: str) -> None:
        created_by = " ".join(st.shell() + ["#(nop) ", comment])
        self._commit_step(st, title, created_by, None)

    # --- metadata instructions ---------------------------------------------------
    def _do_env(self, st: _State, c: Command, title: str) -> None:
        env = self._env(st)
        lex = Lexer(self.escape)
        pairs = [(lex.process_word(c.args[i], env), lex.process_word(c.args[i + 1], env))
                 for i in range(0, len(c.args), 3)]
        items = list(st.run_config.get("Env") or [])
        for k, v in pairs:
            replaced = False
            for i, e in enumerate(items):
                if e.partition("=")[0] == k:
                    items[i] = f"{k}={v}"
                    replaced = True
            if not replaced:
                items.append(f"{k}={v}")
        st.run_config["Env"] = items
        self._metadata(st, title, "ENV " + " ".join(f"{k}={v}" for k, v in pairs))

    def _do_label(self, st: _State, c: Command, title: str) -> None:
        env = self._env(st)
        lex = Lexer(self.escape)
        word = (lambda w: lex.process_word(w, env)) if c.expand else (lambda w: w)
        pairs = [(word(c.args[i]), word(c.args[i + 1])) for i in range(0, len(c.args), 3)]
        labels = dict(st.run_config.get("Labels") or {})
        labels.update(pairs)
        st.run_config["Labels"] = labels
        self._metadata(st, title, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs))

    def _do_arg(self, st: _State, c: Command, title: str) -> None:
        parts = []
        for word in c.args:
            name, eq, default = word.partition("=")
            value: str | None
            if name in self.opts.build_args:
                value = self.opts.build_args[name]
            elif eq:
                value = self._word(st, default)
            elif name in self.plan.meta_env:
                value = self.plan.meta_env[name]
            else:
                value = None
            self.consumed.add(name)
            # history shows the default expanded (docker's ArgCommand.Expand), never
            # the --build-arg value
            parts.append(name + ("=" + self._word(st, default) if eq else ""))
            st.args[name] = value
        self._metadata(st, title, "ARG " + " ".join(parts))

    def _do_cmd(self, st: _State, c: Command, title: str) -> None:
        cmd = c.args if c.json else st.shell() + [c.args[0]]
        st.run_config["Cmd"] = cmd
        st.cmd_set = True
        self._metadata(st, title, "CMD " + _go_quote_list(cmd))

    def _do_entrypoint(self, st: _State, c: Command, title: str) -> None:
        ep = c.args if c.json else st.shell() + [c.args[0]]
        st.run_config["Entrypoint"] = ep
        if not st.cmd_set:
            st.run_config["Cmd"] = None
        self._metadata(st, title, "ENTRYPOINT " + _go_quote_list(ep))

    def _do_expose(self, st: _State, c: Command, title: str) -> None:
        ports = [p for w in c.args for p in self._words(st, w)]
        exposed = dict(st.run_config.get("ExposedPorts") or {})
        for p in ports:
            for spec in _port_specs(p):
                exposed[spec] = {}
        st.run_config["ExposedPorts"] = exposed
        self._metadata(st, title, "EXPOSE " + " ".join(sorted(ports)))

    def _do_user(self, st: _State, c: Command, title: str) -> None:
        st.run_config["User"] = self._word(st, c.args[0])
        self._metadata(st, title, f"USER {st.run_config['User']}")

    def _do_volume(self, st: _State, c: Command, title: str) -> None:
        vols = [self._word(st, a) for a in c.args]  # one word each, even with spaces
        if not vols or any(not v.strip() for v in vols):
            raise c.error("VOLUME specified can not be an empty string")
        volumes = dict(st.run_config.get("Volumes") or {})
        for v in vols:
            volumes[v] = {}
        st.run_config["Volumes"] = volumes
        self._metadata(st, title, "VOLUME [" + " ".join(vols) + "]")

    def _do_stopsignal(self, st: _State, c: Command, title: str) -> None:
        sig = self._word(st, c.args[0])
        if not _valid_signal(sig):
            raise c.error(f"Invalid signal: {sig}")
        st.run_config["StopSignal"] = sig
        self._metadata(st, title, f"STOPSIGNAL {sig}")

    def _do_shell(self, st: _State, c: Command, title: str) -> None:
        st.run_config["Shell"] = list(c.args)
        self._metadata(st, title, "SHELL [" + " ".join(c.args) + "]")

    def _do_maintainer(self, st: _State, c: Command, title: str) -> None:
        st.config["author"] = c.args[0]
        self._metadata(st, title, f"MAINTAINER {c.args[0]}")

    def _do_onbuild(self, st: _State, c: Command, title: str) -> None:
        text = c.original.split(None, 1)[1].strip() if " " in c.original.strip() else ""
        st.run_config["OnBuild"] = list(st.run_config.get("OnBuild") or []) + [text]
        self._metadata(st, title, f"ONBUILD {text}")

    def _do_healthcheck(self, st: _State, c: Command, title: str) -> None:
        kind = c.args[0].upper()
        # options not given keep the inherited ones, field by field (docker 20.10's
        # legacy builder, which the comparison tests hold Kade to)
        hc: dict = {}  # the instruction's own: docker's history shows these
        if kind == "NONE":
            hc["Test"] = ["NONE"]
        else:
            hc["Test"] = ["CMD"] + c.args[1:] if c.json else ["CMD-SHELL", c.args[1]]
            for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                              ("start-period", "StartPeriod"),
                              ("start-interval", "StartInterval")):
                if c.flags.get(flag):
                    hc[key] = _duration(c, flag, c.flags[flag])
            if c.flags.get("retries"):
                try:
                    hc["Retries"] = int(c.flags["retries"])
                except ValueError:
                    raise c.error(f"invalid value for retries: {c.flags['retries']}") from None
                if hc["Retries"] < 0:
                    raise c.error("--retries cannot be negative")
        st.run_config["Healthcheck"] = {**(st.run_config.get("Healthcheck") or {}), **hc}
        self._metadata(st, title, "HEALTHCHECK " + _go_health(hc))

    # --- file-system instructions ------------------------------------------------
    def _do_workdir(self, st: _State, c: Command, title: str) -> None:
        path = self._word(st, c.args[0])
        if not path.startswith("/"):
            path = os.path.join("/", st.run_config.get("WorkingDir") or "/", path)
        path = os.path.normpath(path)
        if path.startswith("//"):
            path = path[1:]
        st.run_config["WorkingDir"] = path
        created_by = " ".join(st.shell() + [f"#(nop) WORKDIR {path}"])
        self._commit_step(st, title, created_by,
                          lambda cfg, v: self.backend.mkdir(st.image_id, cfg, path))

    def _do_run(self, st: _State, c: Command, title: str) -> None:
        if c.json:
            argv = list(c.args)
        else:
            argv = st.shell() + [_with_heredocs(c)]
        if c.heredocs and not c.json and c.args[0].strip() == f"<<{c.heredocs[0].name}" \
                and len(c.heredocs) == 1:
            argv = st.shell() + [c.heredocs[0].text]
        args_env = self._build_args_in_scope(st)
        shown = self._build_args_in_scope(st, proxies=False)
        probe = ([f"|{len(shown)}", *shown] if args_env else []) + argv
        created_by = " ".join(probe)
        network = c.flags.get("network") or self.opts.network
        mounts = [self._mount(st, c, m) for m in c.flags.get("mount", [])]
        req = RunRequest(argv=argv, env=list(st.run_config.get("Env") or []) + args_env,
                         user=st.run_config.get("User") or "",
                         workdir=st.run_config.get("WorkingDir") or "/",
                         network=network, mounts=mounts)
        extra = {"network": network, "mounts": [m for m in mounts if m["type"] != "secret"]}

        def action(cfg: dict, v: int) -> str:
            return self.backend.run(st.image_id, cfg, req,
                                    lambda data: self.progress.log(v, data))
        self._commit_step(st, title, created_by, action, extra)

    def _mount(self, st: _State, c: Command, spec: str) -> dict:
        m = parse_mount(spec)
        for key in ("target", "source", "from", "id"):
            if key in m:
                m[key] = self._word(st, m[key])
        if m["type"] == "secret":
            sid = m.get("id") or os.path.basename(m.get("target", ""))
            src = self.opts.secrets.get(sid)
            if src is None:
                if m.get("required") == "true":
                    raise InvalidArgument(f'secret "{sid}" is required but was not given '
                                          "(kade build --secret id=" + sid + ",src=FILE)")
                m["skip"] = True
            m["source"] = src or ""
            m.setdefault("target", f"/run/secrets/{sid}")
        elif m["type"] == "bind":
            m["source"] = self._bind_source(st, c, m)
        elif m["type"] == "cache":
            m.setdefault("id", os.path.normpath(m["target"]))
        if not m["target"].startswith("/"):
            m["target"] = os.path.join(st.run_config.get("WorkingDir") or "/", m["target"])
        return m

    def _bind_source(self, st: _State, c: Command, m: dict) -> str:
        rel = m.get("source", "")
        ctx = self._exported(st, c, m["from"], ["/" + rel.lstrip("/")]) if m.get("from") \
            else self._context()
        return ctx.path_of(ctx.sources([rel or "."])[0])

    def _context(self) -> Context:
        if self.opts.context is None:
            raise InvalidArgument("this build has no context: COPY and ADD need one "
                                  "(give a directory or a tar, not only a Dockerfile)")
        return self.opts.context

    def _do_copy(self, st: _State, c: Command, title: str) -> None:
        self._copy(st, c, title, "COPY")

    def _do_add(self, st: _State, c: Command, title: str) -> None:
        self._copy(st, c, title, "ADD")

    def _copy(self, st: _State, c: Command, title: str, name: str) -> None:
        words = [self._word(st, a) for a in c.args]
        dest = words[-1]
        shown_dest = dest  # history keeps the destination as written
        if not dest.startswith("/"):  # relative to WORKDIR, keeping a trailing slash
            slash = dest.endswith("/") or dest in (".", "")
            dest = os.path.normpath(os.path.join(st.run_config.get("WorkingDir") or "/", dest))
            dest = dest.rstrip("/") + "/" if slash else dest
        srcs = words[:-1]
        try:
            items = self._sources(st, c, srcs, name)
        except DockerfileError:
            raise
        except KadeError as e:  # name the instruction's line, as BuildKit does
            raise c.error(str(e)) from None
        if len(items) > 1 and not dest.endswith("/"):
            raise c.error(f"When using {name} with more than one source file, the "
                          "destination must be a directory and end with a /")
        chown = self._word(st, c.flags["chown"]) if c.flags.get("chown") else None
        chmod = _chmod(c, self._word(st, c.flags["chmod"])) if c.flags.get("chmod") else None
        parents = bool(c.flags.get("parents"))
        kind = "multi" if len(items) > 1 else ("dir" if items[0].source.is_dir else "file")
        sums = hashlib.sha256()
        for item in items:
            sums.update(item.context.checksum([item.source]).encode())
        # docker 20.10's exact text: "--chown=u:g" glued to the source hash, and a
        # downloaded file's hash without its "file:" kind
        owner = f"--chown={chown}" if chown else ""
        url = len(srcs) == 1 and srcs[0].startswith(("http://", "https://"))
        what = sums.hexdigest() if url else f"{kind}:{sums.hexdigest()}"
        created_by = " ".join(st.shell() + ["#(nop)", f"{name} {owner}{what} in {shown_dest} "])
        extra = {"chown": chown, "chmod": chmod, "parents": parents}

        def action(cfg: dict, v: int) -> str:
            return self._apply_copy(st, cfg, items, dest, chown, chmod, parents)
        self._commit_step(st, title, created_by, action, extra)

    def _sources(self, st: _State, c: Command, srcs: list[str], name: str) -> list[_Item]:
        """The sources of a COPY or ADD: from the build context, a stage or an image
        (COPY --from), heredocs, and for ADD URLs and local archives."""
        heredocs = {h.name: h for h in c.heredocs}
        frm = self._word(st, c.flags["from"]) if c.flags.get("from") else None
        ctx = self._exported(st, c, frm, sorted({"/" + _static_prefix(s).lstrip("/")
                                                 for s in srcs})) if frm else None
        out: list[_Item] = []
        for s in srcs:
            marker = s.lstrip("<-").strip("\"'") if s.startswith("<<") else None
            if marker in heredocs:
                out.append(self._heredoc_source(st, heredocs[marker]))
            elif name == "ADD" and s.startswith(("http://", "https://")):
                out.append(self._url_source(s))
            else:
                cx = ctx or self._context()
                out += [_Item(cx, src, name == "ADD" and frm is None) for src in cx.sources([s])]
        return out

    def _exported(self, st: _State, c: Command, frm: str, paths: list[str]) -> Context:
        """Paths of the stage or image that COPY --from or RUN --mount from= names, in
        a scratch directory (owners kept), waiting for the stage when it is one."""
        dep = stages_mod.find(self.plan.stages, frm, st.stage.index)
        if dep is not None:
            self._wait_for(dep.index)
            image_id = self._results[dep.index].image_id
        else:
            try:
                image_id = self.backend.base(frm, pull=self.opts.pull)[0]
            except KadeError as e:
                raise c.error(f'{c.cmd} --from={frm}: no build stage and no image of that '
                              f"name: {e}") from None
        into = self.backend.scratch_dir()
        if image_id is not None:
            self.backend.export(image_id, paths, into)
        return Context(into, keep_owners=True, label=f"stage or image {frm!r}")

    def _heredoc_source(self, st: _State, h) -> _Item:
        into = self.backend.scratch_dir()
        text = h.text
        if h.expand and "$" in text:
            text = Lexer(self.escape, raw_quotes=True).process_word(text, self._env(st))
        path = os.path.join(into, h.name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        ctx = Context(into, label="heredoc")
        return _Item(ctx, ctx.sources([h.name])[0], False)

    def _url_source(self, url: str) -> _Item:
        into = self.backend.scratch_dir()
        name, mtime = self.backend.download(url, into)
        path = os.path.join(into, name)
        os.chmod(path, 0o600)
        if mtime:
            os.utime(path, (mtime, mtime))
        ctx = Context(into, label=f"URL {url}")
        return _Item(ctx, ctx.sources([name])[0], False)

    def _apply_copy(self, st: _State, cfg: dict, items: list[_Item], dest: str,
                    chown: str | None, chmod: int | None, parents: bool) -> str:
        """All sources go into one layer: one tar of the plain sources (a file under
        its name, a directory's contents), then ADD's local archives. A single file
        whose destination has no trailing slash takes that name unless the
        destination is an existing directory: the backend decides, in the image."""
        scratch = self.backend.scratch_dir()
        keep = chown is None and all(i.context.keep_owners for i in items)
        owner = None if keep else self.backend.user_ids(st.image_id, chown or "0:0")
        archives = [i.context.path_of(i.source) for i in items if i.extract and not
                    i.source.is_dir and _is_archive(i.context.path_of(i.source))]
        plain = [i for i in items if i.context.path_of(i.source) not in archives]
        tar = None
        if plain:
            tar = os.path.join(scratch, "copy.tar")
            with open(tar, "wb") as out:
                _write_sources(out, plain, owner=owner, chmod=chmod, parents=parents)
        single = len(items) == 1 and not items[0].source.is_dir and not archives
        rename = None
        if single and not dest.endswith("/") and not parents:
            rename = (items[0].source.name, os.path.basename(dest))
        return self.backend.copy(st.image_id, cfg, CopyRequest(
            tar=tar, archives=archives, dest=dest, rename=rename,
            # docker: --chown does not reach archives ADD unpacks, nor the directory
            # made for them alone
            dir_owner=(owner or (0, 0)) if plain else (0, 0)))


@dataclass(frozen=True)
class _Item:
    context: Context
    source: Source
    extract: bool  # ADD of a local file: an archive is extracted


class _Flag:
    """threading.Event's set/is_set/wait without importing threading (~6 ms)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        if not self._set:
            time.sleep(timeout)
        return self._set


def _write_sources(out, items: list[_Item], *, owner, chmod, parents: bool) -> None:
    """One tar of sources from possibly several contexts."""
    from kade.archive import TarWriter
    w = TarWriter(out)
    for item in items:
        cx, src = item.context, item.source
        top = cx.path_of(src)
        suid = cx.keep_owners  # files from the build context lose setuid/setgid
        if not src.is_dir:
            head, name = os.path.split(top)
            cx.add(w, head, name, src.rel if parents else src.name, os.lstat(top), owner, chmod,
                   suid=suid)
            continue
        prefix = src.rel + "/" if parents and src.rel else ""
        if prefix:
            cx.add(w, os.path.dirname(top), os.path.basename(top), src.rel, os.lstat(top),
                   owner, chmod, suid=suid)
        for below, stt in cx.entries(src):
            if below:
                head, name = os.path.split(os.path.join(top, below))
                cx.add(w, head, name, prefix + below, stt, owner, chmod, suid=suid)
    w.close()


def _is_archive(path: str) -> bool:
    from kade.build.context import is_archive
    with open(path, "rb") as f:
        return is_archive(f)


def _static_prefix(pattern: str) -> str:
    """The part of a source pattern before its first wildcard, up to a "/"."""
    if not has_wildcards(pattern):
        return pattern
    head = pattern[:min(i for i in (pattern.find(ch) for ch in "*?[") if i >= 0)]
    return head.rpartition("/")[0] or "/"


def _with_heredocs(c: Command) -> str:
    """A shell-form RUN with its here-documents, as the shell reads them."""
    text = c.args[0]
    for h in c.heredocs:
        text += "\n" + h.content + h.name
    return text


def _chmod(c: Command, text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise c.error(f"invalid chmod parameter: {text!r}: use an octal mode such as 0755") \
            from None
    if mode > 0o7777:
        raise c.error(f"invalid chmod parameter: {text!r}")
    return mode


def _duration(c: Command, flag: str, text: str) -> int:
    from kade.util.units import parse_duration
    try:
        seconds = parse_duration(text)
    except (InvalidArgument, ValueError):
        raise c.error(f'time: invalid duration "{text}"') from None
    if 0 < seconds < 0.001 or seconds < 0:
        raise c.error(f"Interval \"{flag}\" cannot be less than 1ms")
    return int(round(seconds * 1e9))


def _port_specs(text: str) -> list[str]:
    port, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    lo, _, hi = port.partition("-")
    if not lo.isdigit() or (hi and not hi.isdigit()):
        raise InvalidArgument(f"invalid containerPort: {port}")
    return [f"{p}/{proto}" for p in range(int(lo), int(hi or lo) + 1)]


def _valid_signal(sig: str) -> bool:
    import signal
    if sig.isdigit():
        return 0 < int(sig) < 65
    name = sig.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    return hasattr(signal.Signals, name) or name.startswith("SIGRTM")


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _go_quote(s: str) -> str:
    """Go's strconv.Quote: printable runes as they are, others escaped."""
    out = []
    for ch in s:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _go_quote_list(items: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(_go_quote(s) for s in items) + "]"


def _go_health(hc: dict) -> str:
    """Go's %q of a *HealthConfig, as docker's history shows it."""
    parts = [_go_quote_list(hc["Test"])]
    for key in ("Interval", "Timeout", "StartPeriod"):  # docker 20.10 has no StartInterval
        parts.append(_go_quote(_go_duration(hc.get(key, 0))))
    parts.append("'\\x%02x'" % hc.get("Retries", 0) if hc.get("Retries", 0) < 32
                 else repr(chr(hc["Retries"])))
    return "&{" + " ".join(parts) + "}"


def _go_duration(ns: int) -> str:
    """Go's time.Duration.String() for whole milliseconds and up."""
    if ns == 0:
        return "0s"
    out = ""
    h, rem = divmod(ns, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    s = rem / 1e9
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    out += (f"{s:.9f}".rstrip("0").rstrip(".") or "0") + "s"
    if ns < 10**9 and not h and not m:
        return f"{ns / 1e6:g}ms"
    return out
