"""Hook parsing, the state hooks read, and running one (no root)."""

from __future__ import annotations

import json

import pytest

from kade import errors
from kade.runtime import hooks


@pytest.mark.parametrize(("given", "match"), [
    ({"prestart": [{"path": "bin/true"}]}, 'prestart hook path "bin/true" is not absolute'),
    ({"poststop": [{"args": ["x"]}]}, 'poststop hook path "None" is not absolute'),
    ({"poststart": [{"path": "/bin/true", "timeout": 0}]}, 'timeout "0" must be a positive'),
    ({"poststart": [{"path": "/bin/true", "timeout": "5"}]}, 'timeout "5" must be a positive'),
    ({"preStart": []}, 'hook kind "preStart" is not valid'),
])
def test_bad_hooks_are_refused(given, match):
    with pytest.raises(errors.InvalidArgument, match=match):
        hooks.parse({"hooks": given})


def test_args_default_to_the_path_and_env_to_the_runtimes():
    found = hooks.parse({"hooks": {"poststop": [{"path": "/bin/true"}]}})
    assert found["poststop"] == (hooks.Hook("/bin/true", ("/bin/true",), None, None),)
    assert found["prestart"] == ()


def test_state_omits_an_empty_pid_and_annotations_as_runc_does():
    assert json.loads(hooks.state("1.0.2", "c", "stopped", 0, "/b", {})) == {
        "ociVersion": "1.0.2", "id": "c", "status": "stopped", "bundle": "/b"}
    assert json.loads(hooks.state("1.0.2", "c", "created", 7, "/b", {"a": "1"}))["pid"] == 7


def test_a_failing_hook_names_itself_and_quotes_its_stderr():
    hook = hooks.Hook("/bin/sh", ("sh", "-c", "cat >/dev/null; echo 'bad\x1b[2J' >&2; exit 4"))
    with pytest.raises(errors.FailedPrecondition) as e:
        hooks.run_all("createRuntime", [hook], b"{}")
    assert str(e.value) == ('createRuntime hook #0 "/bin/sh" failed: exit status 4, '
                            'stderr: "bad\\x1b[2J"')


def test_a_hook_reads_the_state_and_gets_only_its_env(tmp_path):
    out = tmp_path / "out"
    hook = hooks.Hook("/bin/sh", ("sh", "-c", f'cat > {out}; echo "$A${{HOME:-none}}" >> {out}'),
                      ("A=1",))
    hooks.run("poststart", 0, hook, b'{"id": "c"}')
    assert out.read_text() == '{"id": "c"}1none\n'


def test_a_missing_hook_fails_cleanly():
    with pytest.raises(errors.FailedPrecondition, match='"/nonexistent" failed: no such file'):
        hooks.run("poststop", 0, hooks.Hook("/nonexistent", ("x",)), b"{}")
