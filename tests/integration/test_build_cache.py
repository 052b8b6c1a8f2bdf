"""`kade build`'s cache as a user sees it: CACHED marks in the step log, the same
image id after a no-op rebuild, what a changed source invalidates, and
`kade builder prune` / `kade system df` / `kade images -a`."""

import os
import time

from build_helpers import build, image_id, run, steps, write_tree

DOCKERFILE = """\
FROM busybox
RUN echo one > /one
COPY a.txt /a.txt
ENV STAGE=two
RUN cat /a.txt > /copy-of-a
COPY b.txt /b.txt
RUN cat /b.txt > /copy-of-b
CMD ["cat", "/copy-of-a", "/copy-of-b"]
"""
FILES = {"a.txt": "a\n", "b.txt": "b\n"}


def _cached(log: str) -> list[bool]:
    """Per step after FROM: was it taken from the cache?"""
    return [status == "CACHED" for title, status in steps(log) if not title.startswith("FROM")]


def test_rebuilds_reuse_exactly_what_did_not_change(kade, tmp_path):
    first = build(kade, tmp_path, "-t", "cache:1", dockerfile=DOCKERFILE, files=FILES)
    assert not any(_cached(first.stderr))
    old = image_id(kade, "cache:1")

    again = build(kade, tmp_path, "-t", "cache:1")
    assert all(_cached(again.stderr)) and len(_cached(again.stderr)) == 7
    assert image_id(kade, "cache:1") == old

    # a new mtime alone is not a change
    os.utime(tmp_path / "a.txt", (1, 1))
    os.utime(tmp_path / "b.txt", None)
    touched = build(kade, tmp_path, "-t", "cache:1")
    assert all(_cached(touched.stderr)) and image_id(kade, "cache:1") == old

    # the last COPY's source changed: that step and the later ones run again
    write_tree(tmp_path, {"b.txt": "b, changed\n"})
    changed = build(kade, tmp_path, "-t", "cache:1")
    assert _cached(changed.stderr) == [True, True, True, True, False, False, False]
    assert image_id(kade, "cache:1") != old
    assert run(kade, "cache:1") == "a\nb, changed\n"

    # a mode change is a change too
    os.chmod(tmp_path / "b.txt", 0o600)
    moded = build(kade, tmp_path, "-t", "cache:1")
    assert _cached(moded.stderr) == [True, True, True, True, False, False, False]


def test_another_dockerfile_shares_the_common_steps(kade, tmp_path):
    build(kade, tmp_path, "-t", "share:1", dockerfile=DOCKERFILE, files=FILES)
    other = DOCKERFILE.split("COPY b.txt")[0] + "RUN echo other > /other\n"
    write_tree(tmp_path, {"Other.Dockerfile": other})
    p = kade("build", "--progress=plain", "-t", "share:2", "-f",
             str(tmp_path / "Other.Dockerfile"), str(tmp_path))
    assert [s for s in steps(p.stderr) if s[0] != "FROM busybox"] == [
        ("RUN echo one > /one", "CACHED"), ("COPY a.txt /a.txt", "CACHED"),
        ("ENV STAGE=two", "CACHED"), ("RUN cat /a.txt > /copy-of-a", "CACHED"),
        ("RUN echo other > /other", "DONE")]
    assert run(kade, "share:2", "cat", "/copy-of-a", "/other") == "a\nother\n"


def test_images_hides_intermediate_images(kade, tmp_path):
    def listed(*flags):
        return kade("images", "-q", "--no-trunc", *flags).stdout.split()
    before, before_all = listed(), listed("-a")
    build(kade, tmp_path, "-t", "inter:1", dockerfile=DOCKERFILE.replace("one", "inter"),
          files=FILES)
    assert set(listed()) - set(before) == {image_id(kade, "inter:1")}
    # one intermediate image per step but the last, and the final one
    assert len(set(listed("-a")) - set(before_all)) == 7


def _build_cache_row(kade) -> list[str]:
    rows = [line.split() for line in kade("system", "df").stdout.splitlines()]
    return next(r for r in rows if r[:2] == ["Build", "Cache"])


def test_builder_prune_frees_the_cache(kade, tmp_path):
    build(kade, tmp_path, "-t", "prune:1", dockerfile=DOCKERFILE + "RUN echo prune\n",
          files=FILES)
    assert int(_build_cache_row(kade)[2]) > 0
    # dangling only: the steps of a tagged image stay
    out = kade("builder", "prune", "-f").stdout
    assert "Total reclaimed space:" in out
    assert all(_cached(build(kade, tmp_path, "-t", "prune:1").stderr))
    # entries used within the hour are kept by until=1h; an until= in the future takes all
    kade("builder", "prune", "-a", "-f", "--filter", "until=1h")
    assert all(_cached(build(kade, tmp_path, "-t", "prune:1").stderr))
    later = str(int(time.time()) + 3600)
    out = kade("builder", "prune", "-a", "-f", "--filter", f"until={later}").stdout
    assert out.startswith("Deleted build cache objects:\n")
    assert _build_cache_row(kade)[2] == "0"
    assert not any(_cached(build(kade, tmp_path, "-t", "prune:1").stderr))

    out = kade("builder", "prune", "-a", "-f").stdout
    assert out.startswith("Deleted build cache objects:\n")
    assert _build_cache_row(kade)[2] == "0"
    assert not any(_cached(build(kade, tmp_path, "-t", "prune:1").stderr))
    assert run(kade, "prune:1") == "a\nb\n"

    # an untagged image's steps are dangling: a plain prune frees them
    kade("rmi", "prune:1")
    out = kade("builder", "prune", "-f").stdout
    assert out.startswith("Deleted build cache objects:\n")
    assert _build_cache_row(kade)[2] == "0"


def test_multi_stage_cache_follows_copy_from(kade, tmp_path):
    df = """\
FROM busybox AS first
COPY a.txt /a.txt
RUN cat /a.txt > /made
FROM busybox
ARG WHO=nobody
RUN echo independent > /i
RUN echo "$WHO" > /who
COPY --from=first /made /made
RUN cat /made
"""
    build(kade, tmp_path, "-t", "multi:1", dockerfile=df, files={"a.txt": "a\n"})
    again = build(kade, tmp_path, "-t", "multi:1")
    assert all(status == "CACHED" for title, status in steps(again.stderr)
               if not title.startswith("FROM"))
    # a new source in the first stage reruns what reads it, in both stages
    write_tree(tmp_path, {"a.txt": "changed\n"})
    p = build(kade, tmp_path, "-t", "multi:1")
    assert [s for s in steps(p.stderr) if not s[0].startswith("FROM")] == [
        ("COPY a.txt /a.txt", "DONE"), ("RUN cat /a.txt > /made", "DONE"),
        ("ARG WHO=nobody", "CACHED"), ("RUN echo independent > /i", "CACHED"),
        ('RUN echo "$WHO" > /who', "CACHED"),
        ("COPY --from=first /made /made", "DONE"), ("RUN cat /made", "DONE")]
    # a new build arg value reruns the steps that see it
    p = build(kade, tmp_path, "-t", "multi:1", "--build-arg", "WHO=me")
    assert [s for s in steps(p.stderr) if s[0].startswith("RUN")] == [
        ("RUN cat /a.txt > /made", "CACHED"), ("RUN echo independent > /i", "DONE"),
        ('RUN echo "$WHO" > /who', "DONE"), ("RUN cat /made", "DONE")]
    assert run(kade, "multi:1", "cat", "/who", "/made") == "me\nchanged\n"
