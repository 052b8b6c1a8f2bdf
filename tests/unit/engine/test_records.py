import pytest

from kade.engine import records, users
from kade.engine.options import CreateOptions
from kade.errors import InvalidArgument

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["default"], "Env": ["PATH=/bin", "A=1"]}


def test_args_replace_cmd_but_keep_entrypoint():
    assert records.command_of(CreateOptions("x", ["a", "b"]), IMAGE) == ["/entry", "a", "b"]
    assert records.command_of(CreateOptions("x"), IMAGE) == ["/entry", "default"]


def test_entrypoint_flag_drops_image_cmd():
    assert records.command_of(CreateOptions("x", entrypoint=["/bin/ls"]), IMAGE) == ["/bin/ls"]


def test_no_command_is_an_error():
    with pytest.raises(InvalidArgument, match="no command specified"):
        records.command_of(CreateOptions("x", entrypoint=[""]), {"Cmd": ["sh"]})


def test_env_merge_overrides_by_key(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "yes")
    env = records.merge_env(IMAGE["Env"], ["A=2", "FROM_HOST", "UNSET_THING"])
    assert env == ["PATH=/bin", "A=2", "FROM_HOST=yes"]


@pytest.mark.parametrize("text,policy", [
    ("no", {"Name": "", "MaximumRetryCount": 0}),
    ("always", {"Name": "always", "MaximumRetryCount": 0}),
    ("on-failure:3", {"Name": "on-failure", "MaximumRetryCount": 3}),
])
def test_restart_policies(text, policy):
    assert records.parse_restart(text) == policy


@pytest.mark.parametrize("bad", ["sometimes", "always:3", "on-failure:x"])
def test_bad_restart_policies(bad):
    with pytest.raises(InvalidArgument):
        records.parse_restart(bad)


@pytest.mark.parametrize("bad", ["a", "-x", "x!", "a b"])
def test_bad_names(bad):
    with pytest.raises(InvalidArgument, match="invalid container name"):
        records.validate_name(bad)


def test_rm_and_restart_conflict():
    with pytest.raises(InvalidArgument, match="--restart and --rm"):
        records.new_record("a" * 64, "n", "sha256:x",
                           CreateOptions("x", auto_remove=True, restart="always"), IMAGE, "/r")


PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = b"root:x:0:\nwheel:x:10:nobody\nnogroup:x:65534:\n"


def test_users_resolve_by_name_and_number():
    assert users.resolve("nobody", PASSWD, GROUP) == (65534, 65534, [65534, 10])
    assert users.resolve("1000:10", PASSWD, GROUP) == (1000, 10, [10])
    assert users.resolve("root:wheel", PASSWD, GROUP) == (0, 10, [10])


def test_unknown_user_is_an_error():
    with pytest.raises(InvalidArgument, match="unable to find user bob"):
        users.resolve("bob", PASSWD, GROUP)
