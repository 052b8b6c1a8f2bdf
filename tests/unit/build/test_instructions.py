"""kade.build.instructions: parsed nodes to checked commands, with BuildKit's messages."""

import pytest

from kade.build.instructions import check, check_one, parse_mount
from kade.build.parser import DockerfileError, parse


def commands(text):
    return check(parse(text))


def last(text):
    return commands(text)[-1]


def refused(text, filename="Dockerfile"):
    with pytest.raises(DockerfileError) as info:
        check(parse(text, filename), filename)
    return str(info.value)


# --- flags, by kind -----------------------------------------------------------------

def test_string_flags_keep_their_value():
    c = last("FROM a\nCOPY --chown=1:2 --chmod=0755 --from=build x /y/\n")
    assert c.flags == {"chown": "1:2", "chmod": "0755", "from": "build"}
    assert c.args == ["x", "/y/"]


def test_bool_flags_alone_or_with_a_value():
    assert last("FROM a\nCOPY --link x /y\n").flags == {"link": True}
    assert last("FROM a\nCOPY --link=false x /y\n").flags == {"link": False}
    assert last("FROM a\nCOPY --parents=TRUE x /y\n").flags == {"parents": True}


def test_bool_flag_with_another_value_is_refused():
    assert refused("FROM a\nCOPY --link=maybe x /y\n") == \
        "Dockerfile:2: expecting boolean value for flag link, not: maybe"


def test_list_flags_repeat():
    c = last("FROM a\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t true\n")
    assert c.flags == {"mount": ["type=cache,target=/c", "type=tmpfs,target=/t"]}
    c = last("FROM a\nCOPY --exclude=*.o --exclude=*.a src /dst/\n")
    assert c.flags == {"exclude": ["*.o", "*.a"]}


def test_a_string_flag_given_twice_is_refused():
    assert refused("FROM a\nCOPY --chown=1 --chown=2 x /y\n") == \
        "Dockerfile:2: duplicate flag specified: chown"


def test_a_bool_flag_given_twice_is_refused():
    # BuildKit's BFlags: only string lists may repeat
    assert refused("FROM a\nCOPY --link --link=false x /y\n") == \
        "Dockerfile:2: duplicate flag specified: link"


def test_a_flag_that_needs_a_value_without_one_is_refused():
    assert refused("FROM a\nCOPY --chown x /y\n") == "Dockerfile:2: missing a value on flag: chown"
    assert refused("FROM a\nRUN --mount true\n") == "Dockerfile:2: missing a value on flag: mount"
    assert refused("FROM a\nCOPY --link= x /y\n") == "Dockerfile:2: missing a value on flag: link"


@pytest.mark.parametrize("text, line, flag", [
    ("FROM a\nCOPY --foo x /y\n", 2, "foo"),
    ("FROM a\nRUN --foo=1 true\n", 2, "foo"),
    ("FROM --foo=bar a\n", 1, "foo"),
    ("FROM a\n\n\nENV --foo=1 A=1\n", 4, "foo"),
    ("FROM a\nADD --from=b x /y\n", 2, "from"),  # COPY's flag, not ADD's
    ("FROM a\nHEALTHCHECK --foo=1 CMD true\n", 2, "foo"),
])
def test_unknown_flag_names_file_and_line(text, line, flag):
    assert refused(text) == f"Dockerfile:{line}: unknown flag: {flag}"


def test_unknown_flag_message_names_the_dockerfile_given():
    assert refused("FROM a\nCOPY --foo x /y\n", "build/Dockerfile.dev") == \
        "build/Dockerfile.dev:2: unknown flag: foo"


def test_error_line_is_where_a_continued_instruction_starts():
    assert refused("FROM a\nCOPY \\\n  --foo \\\n  x /y\n") == "Dockerfile:2: unknown flag: foo"


def test_flags_of_each_instruction_are_its_own():
    assert last("FROM --platform=linux/amd64 a\n").flags == {"platform": "linux/amd64"}
    c = last("FROM a\nADD --checksum=sha256:00 --keep-git-dir --chown=1 x /y\n")
    assert c.flags == {"checksum": "sha256:00", "keep-git-dir": True, "chown": "1"}
    c = last("FROM a\nHEALTHCHECK --interval=5s --retries=3 CMD true\n")
    assert c.flags == {"interval": "5s", "retries": "3"}


# --- argument counts ------------------------------------------------------------------

@pytest.mark.parametrize("text", ["FROM a b\n", "FROM a AS\n", "FROM a b c d\n", "FROM a FOR b\n"])
def test_from_needs_one_or_three_words(text):
    assert refused(text) == "Dockerfile:1: FROM requires either one or three arguments"


def test_from_as_is_case_insensitive():
    assert last("FROM a As Build\n").args == ["a", "As", "Build"]


def test_copy_with_one_argument():
    assert refused("FROM a\nCOPY x\n") == ("Dockerfile:2: COPY requires at least two arguments, "
                                          "but only one was provided. Destination could not "
                                          "be determined")
    assert refused("FROM a\nADD x\n").startswith("Dockerfile:2: ADD requires at least two")


@pytest.mark.parametrize("cmd", ["USER", "WORKDIR", "STOPSIGNAL", "EXPOSE", "VOLUME", "ENV",
                                 "LABEL", "ARG", "RUN", "MAINTAINER"])
def test_instructions_without_arguments(cmd):
    msg = refused(f"FROM a\n{cmd}\n")
    assert msg.startswith("Dockerfile:2: ")
    assert cmd in msg and "argument" in msg


@pytest.mark.parametrize("cmd", ["CMD", "ENTRYPOINT"])
def test_empty_exec_form_clears(cmd):
    c = last(f"FROM a\n{cmd} []\n")
    assert (c.args, c.json) == ([], True)


def test_arg_names_can_not_be_blank():
    assert refused("FROM a\nARG =x\n") == "Dockerfile:2: ARG names can not be blank"


def test_shell_must_be_json():
    assert refused("FROM a\nSHELL /bin/bash -c\n") == \
        "Dockerfile:2: SHELL requires the arguments to be in JSON form"
    assert last('FROM a\nSHELL ["/bin/bash", "-c"]\n').args == ["/bin/bash", "-c"]


def test_shell_needs_an_argument():
    assert refused("FROM a\nSHELL []\n") == "Dockerfile:2: SHELL requires at least one argument"


# --- HEALTHCHECK ------------------------------------------------------------------------

def test_healthcheck_none_takes_no_arguments():
    assert refused("FROM a\nHEALTHCHECK NONE x\n") == \
        "Dockerfile:2: HEALTHCHECK NONE takes no arguments"
    assert last("FROM a\nHEALTHCHECK none\n").args == ["none"]


def test_healthcheck_unknown_type():
    assert refused("FROM a\nHEALTHCHECK FOO true\n") == \
        'Dockerfile:2: Unknown type "FOO" in HEALTHCHECK (try CMD)'


def test_healthcheck_cmd_needs_a_command():
    assert refused("FROM a\nHEALTHCHECK CMD\n") == "Dockerfile:2: Missing command after HEALTHCHECK CMD"


def test_healthcheck_forms():
    c = last("FROM a\nHEALTHCHECK --interval=5s CMD curl -f http://x/\n")
    assert (c.args, c.json) == (["CMD", "curl -f http://x/"], False)
    c = last('FROM a\nHEALTHCHECK CMD ["curl", "-f"]\n')
    assert (c.args, c.json) == (["CMD", "curl", "-f"], True)


# --- ONBUILD ------------------------------------------------------------------------------

def test_onbuild_keeps_its_trigger_checked():
    c = last("FROM a\nONBUILD COPY --chown=1 x /y\n")
    assert c.sub is not None and c.sub.cmd == "COPY"
    assert c.sub.flags == {"chown": "1"} and c.sub.args == ["x", "/y"]
    assert c.sub.line == 2


def test_onbuild_onbuild():
    assert refused("FROM a\nONBUILD ONBUILD RUN true\n") == \
        "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"


@pytest.mark.parametrize("sub", ["FROM", "MAINTAINER"])
def test_onbuild_from_and_maintainer(sub):
    assert refused(f"FROM a\nONBUILD {sub} x\n") == \
        f"Dockerfile:2: {sub} isn't allowed as an ONBUILD trigger"


def test_onbuild_trigger_is_checked_too():
    assert refused("FROM a\nONBUILD COPY --foo x /y\n") == "Dockerfile:2: unknown flag: foo"
    assert refused("FROM a\nONBUILD COPY x\n").startswith("Dockerfile:2: COPY requires at least two")


def test_onbuild_needs_a_trigger():
    assert refused("FROM a\nONBUILD\n") == "Dockerfile:2: ONBUILD requires at least one argument"


# --- RUN --------------------------------------------------------------------------------------

def test_run_network_modes():
    for mode in ("default", "none", "host"):
        assert last(f"FROM a\nRUN --network={mode} true\n").flags == {"network": mode}


def test_run_network_bogus():
    assert refused("FROM a\nRUN --network=bogus true\n") == \
        'Dockerfile:2: invalid network mode "bogus"'


def test_run_security_bogus():
    assert refused("FROM a\nRUN --security=bogus true\n") == \
        'Dockerfile:2: security "bogus" is not valid'


def test_run_mount_is_checked_before_anything_runs():
    assert refused("FROM a\nRUN --mount=type=bogus,target=/x true\n") == \
        "Dockerfile:2: unsupported mount type 'bogus'"
    assert refused("FROM a\nRUN --mount=type=cache true\n") == \
        "Dockerfile:2: mount destination (target) must be specified"


def test_check_one_names_the_file_given():
    node = parse("FROM a\nRUN --network=bogus true\n").instructions[1]
    with pytest.raises(DockerfileError) as info:
        check_one(node, "other.Dockerfile")
    assert info.value.filename == "other.Dockerfile" and info.value.line == 2


def test_checked_command_keeps_what_the_parser_gave():
    c = last('FROM a\nRUN ["echo", "hi"]\n')
    assert (c.cmd, c.args, c.json, c.line, c.original) == \
        ("RUN", ["echo", "hi"], True, 2, 'RUN ["echo", "hi"]')
    c = last("FROM a\nRUN <<EOF\necho hi\nEOF\n")
    assert [h.name for h in c.heredocs] == ["EOF"]


# --- parse_mount ----------------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ("target=/x", {"type": "bind", "target": "/x"}),
    ("type=cache,target=/root/.cache,sharing=locked",
     {"type": "cache", "target": "/root/.cache", "sharing": "locked"}),
    ("type=bind,src=sub,dst=/x,from=build",
     {"type": "bind", "source": "sub", "target": "/x", "from": "build"}),
    ("type=bind,source=a,destination=/x", {"type": "bind", "source": "a", "target": "/x"}),
    ("type=bind,target=/x,ro", {"type": "bind", "target": "/x", "ro": "true"}),
    ("type=bind,target=/x,readonly", {"type": "bind", "target": "/x", "ro": "true"}),
    ("type=bind,target=/x,rw", {"type": "bind", "target": "/x", "ro": "false"}),
    ("type=bind,target=/x,readwrite=true", {"type": "bind", "target": "/x", "ro": "false"}),
    ("type=bind,target=/x,rw=false", {"type": "bind", "target": "/x", "ro": "true"}),
    ("type=cache,target=/x,id=c1,mode=0700,uid=1,gid=2",
     {"type": "cache", "target": "/x", "id": "c1", "mode": "0700", "uid": "1", "gid": "2"}),
    ("type=tmpfs,target=/t,size=64m", {"type": "tmpfs", "target": "/t", "size": "64m"}),
    ("type=secret,id=tok", {"type": "secret", "id": "tok"}),
    ("type=secret,id=tok,required", {"type": "secret", "id": "tok", "required": "true"}),
    ("type=secret,id=tok,target=/run/t,env=TOK",
     {"type": "secret", "id": "tok", "target": "/run/t", "env": "TOK"}),
    ("TYPE=cache,Target=/x", {"type": "cache", "target": "/x"}),
])
def test_parse_mount(spec, expected):
    assert parse_mount(spec) == expected


@pytest.mark.parametrize("spec, expected", [
    ("type=CACHE,target=/x", {"type": "cache", "target": "/x"}),
    ("type=cache,target=/x,sharing=LOCKED", {"type": "cache", "target": "/x", "sharing": "locked"}),
    ("type=cache,target=/x,ro=1", {"type": "cache", "target": "/x", "ro": "true"}),
    ("type=cache,target=/x,readonly=False", {"type": "cache", "target": "/x", "ro": "false"}),
    ("type=cache,target=/x,rw=0", {"type": "cache", "target": "/x", "ro": "true"}),
])
def test_parse_mount_values_are_read_as_buildkit_reads_them(spec, expected):
    # mount types and sharing modes are case-insensitive; booleans are Go's ParseBool
    assert parse_mount(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("type=bogus,target=/x", "unsupported mount type 'bogus'"),
    ("type=ssh,target=/x", "RUN --mount=type=ssh is not supported by kade"),
    ("type=cache", "mount destination (target) must be specified"),
    ("type=bind,source=a", "mount destination (target) must be specified"),
    ("type=cache,target=/x,sharing=bogus", "unrecognized sharing mode 'bogus'"),
    ("type=bind,target=/x,foo=1", "unexpected key 'foo' in 'foo=1'"),
    ("type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"),
    ("type=bind,target=/x,rw=maybe", "invalid value for rw: maybe"),
])
def test_parse_mount_refuses(spec, message):
    with pytest.raises(ValueError) as info:
        parse_mount(spec)
    assert str(info.value) == message
