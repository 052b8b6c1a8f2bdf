"""kade.images.pull against the in-memory registry (kade.remotes.memory).

Unpacking layers needs root (overlay whiteouts, chown), so these tests skip
without it. The registry is a fake at the transport seam; everything above it
(auth, manifests, fetch, unpack, the image record) is the real code.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import pytest

import kade.content
import kade.metadata
import kade.snapshots
from kade.errors import FailedPrecondition, Forbidden, InvalidArgument, NotFound, Unavailable
from kade.images import ImageService
from kade.images.pull import Puller
from kade.oci import digest as dg
from kade.oci import mediatypes as mt
from kade.oci import reference
from kade.oci.platform import host_arch
from kade.remotes.client import Session
from kade.remotes.hosts import Hosts
from kade.remotes.memory import MemoryRegistry
from kade.remotes.sources import BlobSources

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root "
                                "(overlay whiteouts, chown)")

OTHER_ARCH = "arm64" if host_arch() != "arm64" else "amd64"


# --- helpers ---------------------------------------------------------------------------


def make_service(root: str) -> ImageService:
    db = kade.metadata.open_db(root)
    content = kade.content.ContentStore(os.path.join(root, "content"))
    snaps = kade.snapshots.open_snapshotter(root, "overlay", db)
    return ImageService(content, db, snaps)


def layer_tar(files: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(body), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(body))
        for info in extra:
            tar.addfile(info)
    return buf.getvalue()


def config_for(tars: list[bytes], arch: str = host_arch(), cmd=("sh",)) -> bytes:
    return json.dumps({"architecture": arch, "os": "linux", "created": "2024-01-02T03:04:05Z",
                       "config": {"Cmd": list(cmd)},
                       "rootfs": {"type": "layers",
                                  "diff_ids": [dg.of_bytes(t) for t in tars]}}).encode()


def push_image(reg: MemoryRegistry, repo: str, tag: str | None, tars: list[bytes],
               arch: str = host_arch(), **kw) -> str:
    return reg.put_image(repo, tag, config_for(tars, arch),
                         [gzip.compress(t, mtime=0) for t in tars], **kw)


@pytest.fixture
def images(tmp_path) -> ImageService:
    return make_service(str(tmp_path / "kade"))


@pytest.fixture
def reg() -> MemoryRegistry:
    return MemoryRegistry()


class Pull:
    """A Puller wired to the fake registry, keeping the messages it emits."""

    def __init__(self, images: ImageService, reg: MemoryRegistry, platform=None, creds=None,
                 staged=True):
        self.messages: list[dict] = []
        session = Session(Hosts(), lambda host: creds, reg, retry_delays=(0, 0))
        root = os.path.dirname(images.content.root)
        self.puller = Puller(images, session, sources=BlobSources(root),
                             emit=self.messages.append, platform=platform,
                             staging=os.path.join(root, "distribution", "unpack") if staged
                             else None)

    def __call__(self, ref: str):
        return self.puller.pull(reference.parse(ref))

    def lines(self) -> list[str]:
        return [(f"{m['id']}: " if "id" in m else "") + m["status"] for m in self.messages
                if "progressDetail" not in m]


def files(images: ImageService, image_id: str) -> dict[str, bytes]:
    out = {}
    diff_ids = [lay["diff_id"] for lay in images.record(image_id)["layers"]]
    for chain_id in dg.chain_ids(diff_ids):
        top = images.snapshots.upper_dir(chain_id)
        for dirpath, _, names in os.walk(top):
            for name in names:
                full = os.path.join(dirpath, name)
                with open(full, "rb") as f:
                    out[os.path.relpath(full, top)] = f.read()
    return out


def assert_nothing_visible(images: ImageService) -> None:
    assert images.db.images() == [] and images.db.tags() == []
    assert [i.key for i in images.snapshots.walk() if i.kind == "committed"] == []
    assert [i.key for i in images.snapshots.walk()] == []  # no extract-* left behind
    ingest = os.path.join(images.content.root, "ingest")
    assert [n for n in os.listdir(ingest) if not n.startswith("resume-")] == []
    staging = os.path.join(os.path.dirname(images.content.root), "distribution", "unpack")
    assert not os.path.exists(staging) or os.listdir(staging) == []


# --- pulling ---------------------------------------------------------------------------


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "in-place"])
def test_pull_records_image_tag_and_repo_digest(images, reg, staged):
    tar = layer_tar({"hello": b"world\n"})
    digest = push_image(reg, "library/app", "latest", [tar])
    pull = Pull(images, reg, staged=staged)
    result = pull("registry.test/library/app")
    short = dg.short_id(dg.of_bytes(gzip.compress(tar, mtime=0)))
    assert pull.lines() == [
        "latest: Pulling from library/app", f"{short}: Pulling fs layer",
        f"{short}: Verifying Checksum", f"{short}: Download complete",
        f"{short}: Pull complete", f"Digest: {digest}"]
    assert result.status == "Downloaded newer image for registry.test/library/app:latest"
    assert result.name == "registry.test/library/app:latest"
    assert images.resolve("registry.test/library/app") == result.image_id
    assert images.record(result.image_id)["repo_digests"] == [
        f"registry.test/library/app@{digest}"]
    assert images.resolve(f"registry.test/library/app@{digest}") == result.image_id
    assert files(images, result.image_id) == {"hello": b"world\n"}
    # the config's exact bytes are the image id
    assert images.content.read(result.image_id) == config_for([tar])


def test_second_pull_is_up_to_date_and_shows_no_layers(images, reg):
    push_image(reg, "app", "1", [layer_tar({"a": b"1"})])
    Pull(images, reg)("registry.test/app:1")
    again = Pull(images, reg)
    result = again("registry.test/app:1")
    assert result.status == "Image is up to date for registry.test/app:1"
    assert [line for line in again.lines() if "layer" in line or "complete" in line] == []


def test_shared_base_layer_already_exists(images, reg):
    base, top = layer_tar({"base": b"b"}), layer_tar({"top": b"t"})
    push_image(reg, "base", "1", [base])
    push_image(reg, "app", "1", [base, top])
    Pull(images, reg)("registry.test/base:1")
    pull = Pull(images, reg)
    result = pull("registry.test/app:1")
    base_short = dg.short_id(dg.of_bytes(gzip.compress(base, mtime=0)))
    assert f"{base_short}: Already exists" in pull.lines()
    assert files(images, result.image_id) == {"base": b"b", "top": b"t"}
    base_gets = reg.requests("GET", dg.of_bytes(gzip.compress(base, mtime=0)))
    assert len(base_gets) == 1  # fetched once, for the first image


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "in-place"])
def test_many_layers_unpack_in_order(images, reg, staged):
    tars = [layer_tar({f"f{i}": bytes([i]) * 1000, "shared": str(i).encode()})
            for i in range(9)]
    push_image(reg, "app", "many", tars)
    result = Pull(images, reg, staged=staged)("registry.test/app:many")
    got = files(images, result.image_id)
    assert got["f5"] == bytes([5]) * 1000
    top = images.snapshots.upper_dir(dg.chain_ids([dg.of_bytes(t) for t in tars])[-1])
    with open(os.path.join(top, "shared"), "rb") as f:
        assert f.read() == b"8"


def test_pull_by_digest(images, reg):
    digest = push_image(reg, "app", None, [layer_tar({"x": b"y"})])
    pull = Pull(images, reg)
    result = pull(f"registry.test/app@{digest}")
    assert pull.lines()[0] == f"registry.test/app@{digest}: Pulling from app"
    assert images.db.tags() == []  # docker tags nothing for a digest pull
    assert images.resolve(f"registry.test/app@{digest}") == result.image_id


def test_oci_image_with_zstd_layer(images, reg):
    import zstandard
    tar = layer_tar({"z": b"zstd!"})
    reg.put_image("app", "z", config_for([tar]), [zstandard.ZstdCompressor().compress(tar)],
                  layer_type=mt.OCI_LAYER_ZSTD, oci=True)
    result = Pull(images, reg)("registry.test/app:z")
    assert files(images, result.image_id) == {"z": b"zstd!"}


def index_of(reg: MemoryRegistry, repo: str, arches: list[str]) -> tuple[str, dict]:
    manifests, by_arch = [], {}
    for arch in arches:
        tar = layer_tar({"arch": arch.encode()})
        d = push_image(reg, repo, None, [tar], arch=arch)
        size = len(reg.manifests[(repo, d)][0])
        manifests.append({"mediaType": mt.DOCKER_MANIFEST, "digest": d, "size": size,
                          "platform": {"os": "linux", "architecture": arch}})
        by_arch[arch] = d
    data = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_LIST,
                       "manifests": manifests}).encode()
    return reg.put_manifest(repo, "multi", data, mt.DOCKER_LIST), by_arch


def test_manifest_list_picks_the_host_platform_and_records_the_list_digest(images, reg):
    list_digest, _ = index_of(reg, "app", [OTHER_ARCH, host_arch()])
    pull = Pull(images, reg)
    result = pull("registry.test/app:multi")
    assert files(images, result.image_id) == {"arch": host_arch().encode()}
    assert result.digest == list_digest
    assert f"Digest: {list_digest}" in pull.lines()


def test_platform_flag_picks_another_entry(images, reg):
    index_of(reg, "app", [host_arch(), OTHER_ARCH])
    result = Pull(images, reg, platform=f"linux/{OTHER_ARCH}")("registry.test/app:multi")
    assert files(images, result.image_id) == {"arch": OTHER_ARCH.encode()}
    assert json.loads(images.content.read(result.image_id))["architecture"] == OTHER_ARCH


def test_no_entry_for_the_platform(images, reg):
    index_of(reg, "app", [OTHER_ARCH])
    with pytest.raises(NotFound, match=f"no matching manifest for linux/{host_arch()}"):
        Pull(images, reg)("registry.test/app:multi")
    assert_nothing_visible(images)


def test_platform_flag_against_a_single_manifest(images, reg):
    push_image(reg, "app", "1", [layer_tar({"a": b""})])
    with pytest.raises(NotFound, match="does not match the specified platform"):
        Pull(images, reg, platform=f"linux/{OTHER_ARCH}")("registry.test/app:1")


def test_interrupted_layer_transfer_resumes(images, reg):
    tar = layer_tar({"big": os.urandom(2 << 20)})
    push_image(reg, "app", "1", [tar])
    blob = dg.of_bytes(gzip.compress(tar, mtime=0))
    reg.truncate(blob, at=500_000)
    result = Pull(images, reg)("registry.test/app:1")
    assert files(images, result.image_id)["big"] == tar[512:512 + (2 << 20)]
    assert reg.requests("GET", blob)[-1][2]["Range"] == "bytes=500000-"


def test_failed_pull_keeps_the_partial_layer_and_the_next_pull_resumes(images, reg):
    tar = layer_tar({"big": os.urandom(2 << 20)})
    push_image(reg, "app", "1", [tar])
    blob = dg.of_bytes(gzip.compress(tar, mtime=0))
    reg.truncate(blob, at=700_000, times=10)
    with pytest.raises(Unavailable, match="transfer failed after 700000 of"):
        Pull(images, reg)("registry.test/app:1")
    assert_nothing_visible(images)
    reg.truncate(blob, at=0, times=0)
    result = Pull(images, reg)("registry.test/app:1")
    assert files(images, result.image_id)["big"] == tar[512:512 + (2 << 20)]
    assert reg.requests("GET", blob)[-1][2]["Range"] == "bytes=700000-"


def test_all_tags(images, reg):
    for tag in ("1", "2"):
        push_image(reg, "app", tag, [layer_tar({"v": tag.encode()})])
    pull = Pull(images, reg)
    results = pull.puller.pull_all_tags(reference.parse_repository("registry.test/app"))
    assert [r.name for r in results] == ["registry.test/app:1", "registry.test/app:2"]
    assert {t for t, _ in images.db.tags()} == {"registry.test/app:1", "registry.test/app:2"}


# --- bad input: one clear line, nothing visible ------------------------------------------


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "in-place"])
def test_layer_not_matching_its_digest(images, reg, staged):
    tar = layer_tar({"a": b"1"})
    push_image(reg, "app", "1", [tar])
    blob = dg.of_bytes(gzip.compress(tar, mtime=0))
    reg.blob_override[blob] = gzip.compress(layer_tar({"a": b"evil"}), mtime=0)
    with pytest.raises(FailedPrecondition, match=f"verification failed for digest {blob}"):
        Pull(images, reg, staged=staged)("registry.test/app:1")
    assert_nothing_visible(images)
    assert not images.content.exists(blob)


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "in-place"])
def test_layer_not_matching_its_diff_id(images, reg, staged):
    good, evil = layer_tar({"a": b"1"}), layer_tar({"a": b"evil"})
    reg.put_image("app", "1", config_for([good]), [gzip.compress(evil, mtime=0)])
    with pytest.raises(FailedPrecondition, match="does not match its diff_id"):
        Pull(images, reg, staged=staged)("registry.test/app:1")
    assert_nothing_visible(images)


@pytest.mark.parametrize("name, kind, link", [
    ("../escape", tarfile.REGTYPE, ""), ("/abs", tarfile.REGTYPE, ""),
    ("evil", tarfile.LNKTYPE, "../../etc/passwd")])
@pytest.mark.parametrize("staged", [True, False], ids=["staged", "in-place"])
def test_escaping_layer_is_refused(images, reg, tmp_path, name, kind, link, staged):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    push_image(reg, "app", "1", [layer_tar({"ok": b"x"}, [info])])
    with pytest.raises(InvalidArgument):
        Pull(images, reg, staged=staged)("registry.test/app:1")
    assert_nothing_visible(images)
    assert not (tmp_path / "escape").exists()


def test_config_layers_mismatch(images, reg):
    tar = layer_tar({"a": b"1"})
    reg.put_image("app", "1", config_for([tar, tar]), [gzip.compress(tar)])
    with pytest.raises(InvalidArgument, match="layers from manifest don't match image "
                       "configuration"):
        Pull(images, reg)("registry.test/app:1")
    assert_nothing_visible(images)


def test_unknown_layer_media_type(images, reg):
    tar = layer_tar({"a": b"1"})
    reg.put_image("app", "1", config_for([tar]), [tar], layer_type="application/x-foo")
    with pytest.raises(InvalidArgument, match='unsupported media type "application/x-foo"'):
        Pull(images, reg)("registry.test/app:1")
    assert_nothing_visible(images)


def test_oversized_manifest(images, reg):
    reg.put_manifest("app", "1", b"{" + b" " * (5 << 20) + b"}", mt.DOCKER_MANIFEST)
    with pytest.raises(InvalidArgument, match="over the 4 MiB limit"):
        Pull(images, reg)("registry.test/app:1")


@pytest.mark.parametrize("status, code", [(401, "UNAUTHORIZED"), (403, "DENIED"),
                                          (404, "NAME_UNKNOWN")])
def test_access_problems_use_dockers_words(images, reg, status, code):
    body = json.dumps({"errors": [{"code": code, "message": "nope"}]}).encode()
    reg.fail("GET", "/manifests/", status, times=3, body=body)
    with pytest.raises((Forbidden, NotFound)) as info:
        Pull(images, reg)("registry.test/app:1")
    assert str(info.value).startswith("pull access denied for registry.test/app, repository "
                                      "does not exist or may require 'kade login'")


def test_private_registry_without_login(images):
    reg = MemoryRegistry(auth="bearer", users={"alice": "pw"})
    push_image(reg, "app", "1", [layer_tar({"a": b"1"})])
    with pytest.raises(Forbidden, match="pull access denied for registry.test/app"):
        Pull(images, reg)("registry.test/app:1")
    from kade.remotes.auth import Credential
    Pull(images, reg, creds=Credential("alice", "pw"))("registry.test/app:1")


def test_manifest_unknown(images, reg):
    with pytest.raises(NotFound, match="manifest for registry.test/app:nope not found: "
                       "manifest unknown"):
        Pull(images, reg)("registry.test/app:nope")


@pytest.mark.parametrize("status, match", [(429, "toomanyrequests"), (500, "500")])
def test_busy_registry(images, reg, status, match):
    push_image(reg, "app", "1", [layer_tar({"a": b"1"})])
    reg.fail("GET", "/blobs/", status, times=10)
    with pytest.raises(Unavailable, match=match):
        Pull(images, reg)("registry.test/app:1")
    assert_nothing_visible(images)


def test_busy_registry_recovers_after_retries(images, reg):
    push_image(reg, "app", "1", [layer_tar({"a": b"1"})])
    reg.fail("GET", "/manifests/", 503, times=2)
    Pull(images, reg)("registry.test/app:1")


def test_config_not_matching_its_digest(images, reg):
    push_image(reg, "app", "1", [layer_tar({"a": b"1"})])
    doc = json.loads(reg.manifests[("app", "1")][0])
    config = reg.blobs[doc["config"]["digest"]]
    reg.blob_override[doc["config"]["digest"]] = config.replace(b'"sh"', b'"xx"')
    with pytest.raises(FailedPrecondition, match="image config verification failed"):
        Pull(images, reg)("registry.test/app:1")
    assert_nothing_visible(images)
