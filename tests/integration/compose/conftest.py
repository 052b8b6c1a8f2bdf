"""`ckade`: the real `kade` CLI in a network namespace of the test module's own (as the
network tests' `netkade`), with a helper that writes a project directory."""

import os
import shutil
import subprocess
import textwrap

import pytest

def _netkade_module():
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "network", "netkade.py")
    spec = importlib.util.spec_from_file_location("kade_netkade", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_mod = _netkade_module()
NetKade, KADE = _mod.NetKade, _mod.KADE


class ComposeKade(NetKade):
    def project(self, path, files: dict) -> str:
        os.makedirs(path, exist_ok=True)
        for name, text in files.items():
            full = os.path.join(path, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(textwrap.dedent(text))
        return str(path)

    def compose(self, where: str, *args, check=True, timeout=120):
        return self("compose", "--project-directory", where, *args, check=check,
                    timeout=timeout)

    def popen(self, where: str, *args):
        return subprocess.Popen(self.enter + KADE + ["--root", self.root, "compose",
                                "--project-directory", where, *args],
                                stderr=subprocess.PIPE, text=True, env=self.env)

    def names(self, *filters) -> list[str]:
        args = ["ps", "-a", "--format", "{{.Names}}"]
        for f in filters:
            args += ["--filter", f]
        return sorted(self(*args).stdout.split())

    def leftovers(self, project: str) -> tuple:
        label = f"label=com.docker.compose.project={project}"
        nets = [n for n in self("network", "ls", "--format", "{{.Name}}").stdout.split()
                if n.startswith(project + "_")]
        vols = [v for v in self("volume", "ls", "-q").stdout.split()
                if v.startswith(project + "_")]
        return self.names(label), nets, vols


@pytest.fixture(scope="module")
def ckade(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter"):
        pytest.skip("needs root, iproute2 and nsenter (network namespaces)")
    if not os.path.exists("/bin/busybox"):
        pytest.skip("Debian's busybox-static is not installed")
    root = str(tmp_path_factory.mktemp("kade-compose"))
    k = ComposeKade(root)
    try:
        k("image", "bootstrap", "busybox")
        yield k
    finally:
        for v in k("volume", "ls", "-q", check=False).stdout.split():
            k("volume", "rm", "-f", v, check=False)
        k.cleanup()
        shutil.rmtree(root, ignore_errors=True)
