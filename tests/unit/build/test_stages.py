"""kade.build.stages: meta ARGs, stages, their dependencies, what a --target needs."""

import pytest

from kade.build.instructions import check
from kade.build.parser import DockerfileError, parse
from kade.build.stages import find, needed, plan


def make(text, build_args=None, builtin=None):
    return plan(check(parse(text)), build_args or {}, builtin=builtin)


def refused(text, build_args=None):
    with pytest.raises(DockerfileError) as info:
        make(text, build_args)
    return str(info.value)


def deps(p):
    return [sorted(s.deps) for s in p.stages]


# --- meta ARGs and FROM lines ---------------------------------------------------------

def test_meta_arg_default_in_from():
    p = make("ARG BASE=busybox\nARG TAG=1.36\nFROM $BASE:${TAG}\n")
    assert p.stages[0].base == "busybox:1.36"
    assert [c.cmd for c in p.meta_args] == ["ARG", "ARG"]
    assert p.meta_env == {"BASE": "busybox", "TAG": "1.36"}


def test_build_arg_overrides_a_meta_default():
    p = make("ARG BASE=busybox\nFROM $BASE\n", {"BASE": "alpine"})
    assert p.stages[0].base == "alpine"
    assert p.meta_env["BASE"] == "alpine"


def test_build_arg_gives_a_meta_arg_without_default():
    assert make("ARG BASE\nFROM $BASE\n", {"BASE": "alpine"}).stages[0].base == "alpine"


def test_build_arg_without_meta_arg_is_not_seen_by_from():
    assert make("FROM img${BASE}\n", {"BASE": "alpine"}).stages[0].base == "img"


def test_meta_args_see_earlier_ones():
    p = make("ARG REPO=library\nARG IMAGE=$REPO/busybox\nFROM ${IMAGE}\n")
    assert p.stages[0].base == "library/busybox"


def test_meta_args_see_builtin_platform_args():
    p = make("ARG ARCH=$TARGETARCH\nFROM img:$ARCH\n", builtin={"TARGETARCH": "arm64"})
    assert p.stages[0].base == "img:arm64"


def test_blank_base_is_refused():
    assert refused("ARG BASE\nFROM $BASE\n") == \
        "Dockerfile:2: base name ($BASE) should not be blank"


def test_meta_arg_without_value_is_unset_not_empty():
    # docker: ARG X with no default and no --build-arg leaves X undefined, so
    # ${X-default} takes the default (and ${X:-default} too)
    assert make("ARG X\nFROM ${X-busybox}\n").stages[0].base == "busybox"
    assert "X" not in make("ARG X\nFROM busybox\n").meta_env


def test_from_platform_is_expanded_with_meta_args():
    p = make("ARG P=linux/arm64\nFROM --platform=$P busybox\n")
    assert p.stages[0].platform == "linux/arm64"
    assert make("FROM busybox\n").stages[0].platform is None


def test_later_args_in_stages_are_not_meta_args():
    p = make("ARG A=1\nFROM busybox\nARG B=2\nFROM busybox\n")
    assert [c.args for c in p.meta_args] == [["A=1"]]
    assert [c.cmd for c in p.stages[0].commands] == ["ARG"]


# --- stage names ------------------------------------------------------------------------------

def test_stage_names_are_lower_cased():
    p = make("FROM busybox AS Build\nFROM BUILD\n")
    assert p.stages[0].name == "build"
    assert p.stages[1].deps == {0}
    assert find(p.stages, "bUiLd", 2) is p.stages[0]


def test_stage_label_is_its_name_or_its_index():
    p = make("FROM busybox AS one\nFROM busybox\n")
    assert [s.label for s in p.stages] == ["one", "stage-1"]


def test_duplicate_stage_names_are_refused_whatever_their_case():
    assert refused("FROM a AS x\nRUN true\nFROM b AS X\n") == 'Dockerfile:3: duplicate stage name "x"'


@pytest.mark.parametrize("name", ["1x", "x!", "-x", "_x", "x/y", "x:y", "é", "xé"])
def test_invalid_stage_names(name):
    assert refused(f"FROM a AS {name}\n") == (
        f'Dockerfile:1: invalid name for build stage: "{name}", name can\'t start with a '
        "number or contain symbols")


@pytest.mark.parametrize("name", ["x", "x1", "a.b", "a-b", "a_b", "X-Y.Z_1"])
def test_valid_stage_names(name):
    assert make(f"FROM a AS {name}\n").stages[0].name == name.lower()


# --- dependencies ----------------------------------------------------------------------------

def test_from_a_stage_depends_on_it():
    p = make("FROM busybox AS base\nFROM base AS two\nFROM two\n")
    assert deps(p) == [[], [0], [1]]
    assert p.stages[2].base == "two"


def test_from_an_image_named_like_no_stage_depends_on_nothing():
    assert deps(make("FROM busybox AS base\nFROM alpine\n")) == [[], []]


def test_from_a_later_stage_is_an_image():
    assert deps(make("FROM later\nFROM busybox AS later\n")) == [[], []]


def test_from_by_index_is_an_image_not_a_stage():
    # only COPY --from and RUN --mount from= accept a stage index
    assert deps(make("FROM busybox\nFROM 0\n")) == [[], []]


def test_copy_from_by_name_and_by_index():
    p = make("FROM busybox AS a\nFROM busybox AS b\nFROM busybox\n"
             "COPY --from=a /x /x\nCOPY --from=1 /y /y\n")
    assert deps(p) == [[], [], [0, 1]]


def test_copy_from_an_image_is_no_dependency():
    assert deps(make("FROM busybox AS a\nFROM busybox\nCOPY --from=alpine:3 /x /x\n")) == [[], []]


def test_copy_from_meta_arg():
    p = make("ARG SRC=a\nFROM busybox AS a\nFROM busybox\nCOPY --from=$SRC /x /x\n")
    assert deps(p) == [[], [0]]


@pytest.mark.parametrize("ref", ["1", "2"])
def test_copy_from_the_current_or_a_later_index_is_refused(ref):
    msg = refused(f"FROM busybox\nFROM busybox\nCOPY --from={ref} /x /x\nFROM busybox\n")
    assert msg.startswith("Dockerfile:3: invalid from flag value " + ref)


def test_copy_from_a_later_name_is_an_image():
    assert deps(make("FROM busybox\nCOPY --from=later /x /x\nFROM busybox AS later\n")) == [[], []]


def test_run_mount_from_a_stage():
    p = make("FROM busybox AS tools\nFROM busybox\n"
             "RUN --mount=type=bind,from=tools,source=/bin,target=/t "
             "--mount=type=cache,target=/c true\n")
    assert deps(p) == [[], [0]]


def test_run_mount_from_an_index():
    p = make("FROM busybox\nFROM busybox\nRUN --mount=from=0,target=/t true\n")
    assert deps(p) == [[], [0]]


def test_onbuild_copy_from_is_not_a_dependency_of_this_build():
    assert deps(make("FROM busybox AS a\nFROM busybox\nONBUILD COPY --from=a /x /x\n")) == [[], []]


# --- what a target needs ------------------------------------------------------------------

DIAMOND = """\
FROM busybox AS base
FROM base AS left
FROM base AS right
FROM busybox AS unused
FROM busybox AS final
COPY --from=left /l /l
COPY --from=right /r /r
FROM final AS extra
"""


def names(stages):
    return [s.label for s in stages]


def test_default_target_is_the_last_stage_and_what_it_needs():
    assert names(needed(make(DIAMOND), None)) == ["base", "left", "right", "final", "extra"]


def test_target_picks_only_the_stages_it_needs_in_dockerfile_order():
    p = make(DIAMOND)
    assert names(needed(p, "final")) == ["base", "left", "right", "final"]
    assert names(needed(p, "left")) == ["base", "left"]
    assert names(needed(p, "unused")) == ["unused"]


def test_target_is_case_insensitive():
    assert names(needed(make(DIAMOND), "LEFT")) == ["base", "left"]


def test_target_that_is_no_stage():
    with pytest.raises(DockerfileError) as info:
        needed(make(DIAMOND), "nope")
    assert "failed to reach build target nope in Dockerfile" in str(info.value)


def test_independent_stages_are_not_needed_by_the_last_one():
    p = make("FROM busybox AS a\nRUN true\nFROM busybox AS b\nFROM busybox\nCOPY --from=b /x /x\n")
    assert names(needed(p, None)) == ["b", "stage-2"]


def test_run_mount_dependency_is_needed():
    p = make("FROM busybox AS tools\nFROM busybox AS other\nFROM busybox\n"
             "RUN --mount=from=tools,target=/t true\n")
    assert names(needed(p, None)) == ["tools", "stage-2"]


# --- the shape of a Dockerfile -------------------------------------------------------------

def test_an_instruction_before_the_first_from():
    assert refused("ENV A=1\nFROM busybox\n") == "Dockerfile:1: no build stage in current context"
    assert refused("ARG A=1\nRUN true\nFROM busybox\n") == \
        "Dockerfile:2: no build stage in current context"


def test_only_args_before_the_first_from():
    p = make("# comment\nARG A=1\n\nARG B\nFROM busybox\n")
    assert len(p.meta_args) == 2 and len(p.stages) == 1


def test_a_dockerfile_with_args_but_no_from():
    assert "no FROM instruction" in refused("ARG A=1\n")


def test_commands_go_to_the_stage_they_follow():
    p = make("FROM a\nRUN 1\nENV X=1\nFROM b\nCMD x\n")
    assert [[c.cmd for c in s.commands] for s in p.stages] == [["RUN", "ENV"], ["CMD"]]
    assert p.stages[1].from_cmd.line == 4
