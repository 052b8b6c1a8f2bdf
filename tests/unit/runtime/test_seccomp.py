"""Compiling seccomp profiles to BPF, and the BPF cache (no filter is loaded here)."""

from __future__ import annotations

import os

import pytest

from kade.errors import InvalidArgument
from kade.oci.defaults import DEFAULT_CAPS, default_seccomp
from kade.runtime import seccomp

SMALL = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "syscalls": [
        {"names": ["read", "write", "no_such_syscall_anywhere"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO"},  # same as default: skipped
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]},
    ],
}


def test_compile_default_profile():
    bpf = seccomp.compile(default_seccomp(DEFAULT_CAPS, arch=os.uname().machine))
    assert len(bpf) > 8 * 100 and len(bpf) % 8 == 0


def test_compile_skips_unknown_names_and_splits_repeated_args():
    assert len(seccomp.compile(SMALL)) % 8 == 0


@pytest.mark.parametrize("change,message", [
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "unsupported seccomp action"),
    ({"architectures": ["SCMP_ARCH_VAX"]}, "unknown seccomp architecture"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]},
     "unknown seccomp operator"),
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "argument index out of range"),
])
def test_compile_rejects(change, message):
    with pytest.raises(InvalidArgument, match=message):
        seccomp.compile({**SMALL, **change})


def test_errno_defaults_to_eperm_and_errno_ret_changes_the_program():
    eperm = seccomp.compile({**SMALL, "defaultErrnoRet": 1})
    assert seccomp.compile(SMALL) == eperm
    assert seccomp.compile({**SMALL, "defaultErrnoRet": 38}) != eperm


def test_cache_key_follows_the_profile():
    assert seccomp.cache_key(SMALL) == seccomp.cache_key(dict(reversed(SMALL.items())))
    assert seccomp.cache_key(SMALL) != seccomp.cache_key({**SMALL, "defaultErrnoRet": 38})


def test_second_compile_comes_from_the_cache(tmp_path):
    bpf = seccomp.cached_compile(SMALL, str(tmp_path))
    cached = tmp_path / (seccomp.cache_key(SMALL) + ".bpf")
    assert cached.read_bytes() == bpf
    cached.write_bytes(b"\x06\x00\x00\x00\x00\x00\xff\x7f")  # "return ALLOW": not what compile makes
    assert seccomp.cached_compile(SMALL, str(tmp_path)) == cached.read_bytes()


def test_torn_cache_file_is_ignored(tmp_path):
    cached = tmp_path / (seccomp.cache_key(SMALL) + ".bpf")
    cached.write_bytes(b"\x06\x00\x00")
    assert seccomp.cached_compile(SMALL, str(tmp_path)) == seccomp.compile(SMALL)


def test_install_bpf_rejects_what_is_not_bpf():
    with pytest.raises(InvalidArgument):
        seccomp.install_bpf(b"\x00" * 7)


def test_cache_is_written_whole_and_leaves_no_temp(tmp_path):
    cache = tmp_path / "cache"
    bpf = seccomp.cached_compile(SMALL, str(cache))
    assert [p.name for p in cache.iterdir()] == [seccomp.cache_key(SMALL) + ".bpf"]
    assert (cache / (seccomp.cache_key(SMALL) + ".bpf")).read_bytes() == bpf


def test_without_a_cache_dir_nothing_is_cached():
    profile = {**SMALL, "defaultErrnoRet": 77}  # a key no other test makes
    assert seccomp.cached_compile(profile, None) == seccomp.compile(profile)
    # the directory every store once shared
    assert not os.path.exists(f"/run/kade/seccomp/{seccomp.cache_key(profile)}.bpf")


def test_runtime_keeps_its_cache_under_its_own_root(tmp_path):
    from kade.runtime import Runtime
    rt = Runtime(str(tmp_path / "runtime"))
    assert rt.seccomp_cache == str(tmp_path / "runtime" / ".seccomp")
    seccomp.cached_compile(SMALL, rt.seccomp_cache)
    assert rt.list() == []  # the cache is never taken for a container
    assert Runtime(str(tmp_path), seccomp_cache="/x").seccomp_cache == "/x"
