#!/usr/bin/env python3
"""The builder benchmark: `kade build` beside docker's legacy builder and podman's, in one run.

    python bench/build.py [--install-peers] [--engines kade,docker,podman] [--runs 10]
                          [--out docs/benchmarks-build.md]

The engines, their private state, the shared busybox image, the turn-taking
sampler, the report's machine facts and the cleanup are bench/run.py's (imported,
not copied). Each engine builds its own copy of one context, so that rewriting a
file for one engine cannot touch another's cache:

    <tmp>/build/<engine>/       Dockerfile (FROM the engine's name for busybox),
                                a.txt b.txt c.txt (the three COPY sources)

The Dockerfile has 10 steps after FROM: 5 RUN, 3 COPY, ENV and CMD. Timed:

    cold      `build --no-cache`: every step runs
    no-op     `build` with everything cached
    changed   `build` after rewriting c.txt, which the last COPY reads: that COPY
              and the two steps after it rebuild, the seven before are cached

Every build is `build -q --network none -t bench-build CONTEXT` (docker with
DOCKER_BUILDKIT=0; podman also with `--pull=never` and the ulimits bench/run.py
gives its containers). The base image is local in every engine, so nothing is
pulled, and RUN steps have no network.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402 - bench/ is not a package: found through sys.path above
    REPO,
    Engine,
    Samples,
    Unavailable,
    Workspace,
    add_common_args,
    ms,
    log,
    ratio,
    sample,
    session,
    table,
    unavailable_row,
    verdict,
)

DEFAULT_RUNS = 10
TAG = "bench-build:latest"
CHANGED = "c.txt"  # read by the last COPY

# FROM, then 10 steps: 2 metadata, 3 COPY, 5 RUN. The last COPY is followed by one
# RUN and CMD, as a source COPY usually is, so a changed source rebuilds three steps.
DOCKERFILE = """\
FROM {image}
ENV BENCH_STEP=1
COPY a.txt /a.txt
RUN echo 1 > /f1
RUN echo 2 > /f2
COPY b.txt /b.txt
RUN echo 3 > /f3
RUN echo 4 > /f4
COPY c.txt /c.txt
RUN echo 5 > /f5
CMD ["sh"]
"""
STEPS = 10

# kade's time over docker's must be at most this (the aims)
AIMS = {"cold": 1 / 3, "noop": 1.0, "changed": 1 / 3}

# benchmark ("noop", "changed", "cold") -> engine -> its timings or why it has none;
# and "cached" -> engine -> steps from cache in the check builds (no-op, changed)
Figures = dict[str, dict]


def build_args(engine: Engine, context: Path, no_cache: bool = False) -> list[str]:
    args = ["build", "-q", "--network", "none", "-t", TAG]
    if engine.name == "podman":
        args += ["--pull=never", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
    if no_cache:
        args.append("--no-cache")
    return [*args, str(context)]


def make_context(ws: Workspace, engine: Engine) -> Path:
    context = ws.dir / "build" / engine.name
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(DOCKERFILE.format(image=engine.image))
    for name in ("a.txt", "b.txt", CHANGED):
        (context / name).write_text(f"{name}\n")
    return context


def prepare(ws: Workspace, engines: list[Engine]) -> dict[str, Path]:
    """A context per engine, and docker on its legacy builder."""
    contexts = {}
    for engine in engines:
        if engine.unavailable:
            continue
        if engine.name == "docker":
            engine.env = {**(engine.env or {}), "DOCKER_BUILDKIT": "0"}
        contexts[engine.name] = make_context(ws, engine)
    return contexts


def rewrite(context: Path) -> None:
    """New content for the last COPY's source, never seen before by any engine."""
    (context / CHANGED).write_text(f"{time.time_ns()}\n")


def timed(engines: list[Engine], args_of: Callable[[Engine], list[str]], runs: int,
          warmups: int) -> dict[str, Samples | str]:
    live = [e for e in engines if not e.unavailable]
    results = sample(live, args_of, runs, warmups)
    return {e.name: e.unavailable or results[e.name] for e in engines}


def bench_build(engines: list[Engine], contexts: dict[str, Path],
                runs: int) -> Figures:
    """The three timings, each with the engines taking turns build by build."""
    def plain(engine: Engine) -> list[str]:
        return build_args(engine, contexts[engine.name])

    def changed(engine: Engine) -> list[str]:
        rewrite(contexts[engine.name])  # before the clock starts: sample() times the call only
        return plain(engine)

    log_names = ", ".join(e.name for e in engines if not e.unavailable)
    figures = {}
    # Cold builds last: every one leaves ten images behind, which may slow a cache
    # lookup down (podman's did, in a trial), so the cached builds run on stores
    # holding only what they made themselves.
    log(f"build no-op: {log_names}, interleaved")
    figures["noop"] = timed(engines, plain, runs, 2)
    log(f"build changed: {log_names}, interleaved")
    figures["changed"] = timed(engines, changed, runs, 1)
    figures["cached"] = {e.name: cache_check(e, contexts[e.name])
                         for e in engines if not e.unavailable}
    log(f"build cold: {log_names}, interleaved")
    figures["cold"] = timed(engines, lambda e: build_args(e, contexts[e.name], no_cache=True),
                            runs, 1)
    return figures


# what each engine's build log prints for a step taken from the cache
CACHE_MARK = {"kade": re.compile(r"^#\d+ CACHED$", re.M),
              "docker": re.compile(r"^ ---> Using cache$", re.M),
              "podman": re.compile(r"^--> Using cache ", re.M)}


def cache_check(engine: Engine, context: Path) -> tuple[str, str]:
    """Steps taken from the cache by a no-op rebuild and by one after a change, counted
    in the build log of two more (untimed) builds: proof that the timings compare
    builds that reuse the same steps. Each is "?" when the build failed."""
    args = [a for a in build_args(engine, context) if a != "-q"]
    if engine.name == "kade":
        args.insert(1, "--progress=plain")
    counts = []
    for change in (False, True):
        if change:
            rewrite(context)
        try:
            c = engine.cli(*args)
        except Unavailable as e:
            log(f"{engine.name}: cache check failed: {e}")
            counts.append("?")
            continue
        counts.append(f"{len(CACHE_MARK[engine.name].findall(c.out + c.err))}/{STEPS}")
    return counts[0], counts[1]


# ---------------------------------------------------------------- the report


INTRO = """Written by `python bench/build.py{args}` on {date} UTC, in {took}. Do not edit
by hand: rerun the runner (bench/README.md). Times are wall-clock times of one `build`
call, from spawn to exit. Ratios are kade's median over the peer's median: below 1 means
kade is faster. Every engine ran as root on this machine with private state in one
temporary directory, the same busybox image, no network for RUN steps and no pulls.
docker is Debian's dockerd 20.10 with its legacy builder (`DOCKER_BUILDKIT=0`); podman
builds with buildah inside. Other figures are in docs/benchmarks.md."""

DOCKERFILE_TEXT = """Each engine builds this Dockerfile (FROM names the engine's busybox) from a
context of its own holding it and three one-line files, always with `build -q --network none
-t {tag}` (podman also `--pull=never`):

```dockerfile
{dockerfile}```"""

COLD_TEXT = """`build --no-cache`, {runs} runs per engine after 1 warm-up, the engines taking
turns build by build; measured last (see the no-op rebuild). Per-step overhead = (total -
the RUN commands' own time) / {steps}. The RUN commands (`echo N > /fN`, a shell builtin
and a redirect) take microseconds, so their own time is estimated as 0 rather than
measured: measuring it (`run sh -c ...` minus an empty run) would subtract two noisy
figures to find one far below their noise. The per-step overhead is thus total / {steps},
and includes the build's fixed cost (start-up, context, FROM, tagging). Aim: kade's
per-step overhead at most 1/3 of docker's."""

NOOP_TEXT = """`build` again with nothing changed, every step cached; {runs} runs per engine
after 2 warm-ups, the first of which is the engine's first build of this context and fills
its cache. Measured first, on stores holding only that build's images, because a cache
lookup may slow down as images pile up (in a trial, podman's no-op rebuild of a 4-step
Dockerfile went from 0.29 s to 0.45 s after six `--no-cache` builds); the cold builds,
which leave ten images each, are measured last. In podman's step log each cached COPY
takes 0.2 to 0.3 s and every other cached step about 30 ms. "Steps from cache" is counted
in the log of one more no-op rebuild after the timed ones, without `-q` (kade with
`--progress=plain`): every engine should show 10/10. Aim: kade's median at most docker's."""

CHANGED_TEXT = """`build` after rewriting `c.txt` with content never seen before (done
before the clock starts): the last COPY, the RUN and the CMD after it rebuild, the seven
steps before are cached. {runs} runs per engine after 1 warm-up, the engines taking turns;
measured after the no-op rebuilds, each run leaving three more images behind. "Steps from
cache" is counted as for the no-op rebuild, in one more such build: 7/10 for every engine
means they all rebuilt the same three steps. Aim: kade's median at most 1/3 of docker's."""


def _rows(results: dict[str, Samples | str], width: int, cells) -> list[list[str]]:
    """One row per engine: cells(name, samples, kade/engine ratio), or why it is missing."""
    kade = results.get("kade")
    rows = []
    for name, r in results.items():
        if isinstance(r, str):
            rows.append(unavailable_row(name, r, width))
            continue
        cmp = ratio(kade.median, r.median) if isinstance(kade, Samples) and name != "kade" else ""
        rows.append(cells(name, r, cmp))
    return rows


def report_cold(results: dict[str, Samples | str], runs: int) -> list[str]:
    header = ["engine", "total median", "p90", "per-step overhead (median)", "p90",
              "kade/engine (median)"]
    rows = _rows(results, len(header), lambda name, r, cmp: [
        name, ms(r.median), ms(r.p90), ms(r.median / STEPS), ms(r.p90 / STEPS), cmp])
    return ["## Cold build (`--no-cache`)", "", COLD_TEXT.format(runs=runs, steps=STEPS), "",
            *table(header, rows)]


def report_timed(title: str, text: str, results: dict[str, Samples | str],
                 cached: dict[str, str]) -> list[str]:
    header = ["engine", "median", "p90", "kade/engine (median)", "steps from cache"]
    rows = _rows(results, len(header), lambda name, r, cmp: [
        name, ms(r.median), ms(r.p90), cmp, cached.get(name, "?")])
    return [title, "", text, "", *table(header, rows)]


AIM_NAMES = {"cold": "cold build, per-step overhead", "noop": "no-op rebuild",
             "changed": "rebuild after changing the last COPY's source"}


def report_aims(figures: Figures) -> list[str]:
    lines = ["## Aims", "", "kade's median over docker's, against the issue's aims:", ""]
    for key, limit in AIMS.items():
        kade, docker = figures[key].get("kade"), figures[key].get("docker")
        aim = "at most docker's" if limit == 1 else f"at most 1/{round(1 / limit)} of docker's"
        if not isinstance(kade, Samples) or not isinstance(docker, Samples):
            missing = "kade" if not isinstance(kade, Samples) else "docker"
            lines.append(f"- {AIM_NAMES[key]}, {aim}: not measured ({missing} unavailable)")
            continue
        r = kade.median / docker.median
        lines.append(f"- {AIM_NAMES[key]}, {aim}: {ratio(kade.median, docker.median)} "
                     f"({ms(kade.median)} vs {ms(docker.median)}): {verdict(r <= limit)}")
    return lines


def report(figures: Figures, runs: int) -> list[list[str]]:
    dockerfile = DOCKERFILE.format(image="busybox:latest")
    cached = figures["cached"]
    return [
        ["## The build", "", DOCKERFILE_TEXT.format(tag=TAG, dockerfile=dockerfile)],
        report_aims(figures),
        report_cold(figures["cold"], runs),
        report_timed("## No-op rebuild", NOOP_TEXT.format(runs=runs), figures["noop"],
                     {name: pair[0] for name, pair in cached.items()}),
        report_timed("## Rebuild after changing the last COPY's source",
                     CHANGED_TEXT.format(runs=runs), figures["changed"],
                     {name: pair[1] for name, pair in cached.items()}),
    ]


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time kade build beside docker's legacy builder and podman build.")
    add_common_args(p, DEFAULT_RUNS, "timed builds per engine and benchmark",
                    REPO / "docs" / "benchmarks-build.md")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)

    def benchmarks(ws: Workspace, engines: list[Engine]) -> list[list[str]]:
        contexts = prepare(ws, engines)
        return report(bench_build(engines, contexts, args.runs), args.runs)

    return session(args, argv, benchmarks, title="Builder benchmarks", intro=INTRO)


if __name__ == "__main__":
    sys.exit(main())
