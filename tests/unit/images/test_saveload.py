"""kade.images.saveload: docker archives out and in.

Unpacking layers needs root (overlay whiteouts, chown), so these tests skip
without it. Archives in docker 20.10's layout and in plain OCI layout are built
by hand here, from the formats' documentation.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import stat
import tarfile

import pytest

import kade.content
import kade.metadata
import kade.snapshots
from kade.errors import FailedPrecondition, InvalidArgument, NotFound
from kade.images import ImageService, LayerInput, saveload
from kade.oci import digest as dg
from kade.oci import mediatypes as mt
from kade.oci.descriptor import Descriptor
from kade.oci.platform import host_arch


def _archive_ready() -> bool:
    import kade.archive
    return hasattr(kade.archive, "apply_layer") and hasattr(kade.archive, "open_decompressed")


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root "
                       "(overlay whiteouts, chown)"),
    pytest.mark.skipif(not _archive_ready(), reason="kade.archive.apply_layer is not there yet"),
]


# --- helpers -------------------------------------------------------------------------


def make_service(root: str) -> ImageService:
    db = kade.metadata.open_db(root)
    content = kade.content.ContentStore(os.path.join(root, "content"))
    snaps = kade.snapshots.open_snapshotter(root, "overlay", db)
    return ImageService(content, db, snaps)


@pytest.fixture
def src(tmp_path) -> ImageService:
    return make_service(str(tmp_path / "src"))


@pytest.fixture
def dst(tmp_path) -> ImageService:
    return make_service(str(tmp_path / "dst"))


def layer_tar(*entries: tuple) -> bytes:
    """entries: (name, body) files, (name, None) dirs, (name, "->", target) symlinks,
    (name, "=>", target) hardlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry[0])
            info.mtime, info.mode = 1_700_000_000, 0o644
            if len(entry) == 3:
                info.type = tarfile.SYMTYPE if entry[1] == "->" else tarfile.LNKTYPE
                info.linkname = entry[2]
                tar.addfile(info)
            elif entry[1] is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def config_for(diff_ids: list[str], cmd: list[str] | None = None) -> dict:
    return {"architecture": host_arch(), "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": {"Env": ["PATH=/bin"], "Cmd": cmd or ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}}


def make_image(images: ImageService, layers: list[bytes], tags: list[str],
               cmd: list[str] | None = None) -> str:
    inputs = [images.ingest_layer(io.BytesIO(data)) for data in layers]
    return images.create(config_for([i.diff_id for i in inputs], cmd), inputs, tags)


def save_bytes(images: ImageService, refs: list[str]) -> bytes:
    out = io.BytesIO()
    saveload.save(images, refs, out)
    return out.getvalue()


def members(archive: bytes) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isreg() else None
            out[m.name] = f.read() if f else None
    return out


def tree(images: ImageService, image_id: str) -> list[tuple]:
    """Every layer's files: (layer, path, kind, mode, body digest or link target)."""
    out = []
    diff_ids = [lay["diff_id"] for lay in images.record(image_id)["layers"]]
    for n, chain_id in enumerate(dg.chain_ids(diff_ids)):
        top = images.snapshots.upper_dir(chain_id)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                if stat.S_ISREG(st.st_mode):
                    with open(full, "rb") as f:
                        what = hashlib.sha256(f.read()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    what = os.readlink(full)
                else:
                    what = ""
                out.append((n, os.path.relpath(full, top), stat.S_IFMT(st.st_mode),
                            stat.S_IMODE(st.st_mode), what))
    return sorted(out)


def tar_of(files: list[tuple[str, bytes | None, str | None]], compress: bool = False) -> bytes:
    """An archive: (name, body, None) files, (name, None, target) symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body, target in files:
            info = tarfile.TarInfo(name)
            if target is not None:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = len(body or b"")
                tar.addfile(info, io.BytesIO(body or b""))
    data = buf.getvalue()
    return gzip.compress(data) if compress else data


def sha(data: bytes) -> str:
    return dg.of_bytes(data)


# --- save ----------------------------------------------------------------------------


def test_save_writes_docker_25_layout(src):
    layer = layer_tar(("etc", None), ("etc/hello", b"hi\n"))
    image_id = make_image(src, [layer], ["example:1"])
    files = members(save_bytes(src, ["example:1"]))

    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    assert json.loads(files["manifest.json"]) == [{
        "Config": f"blobs/sha256/{dg.hex_of(image_id)}", "RepoTags": ["example:1"],
        "Layers": [f"blobs/sha256/{dg.hex_of(sha(layer))}"]}]
    assert json.loads(files["repositories"]) == {"example": {"1": dg.hex_of(sha(layer))}}
    assert files[f"blobs/sha256/{dg.hex_of(sha(layer))}"] == layer
    assert sha(files[f"blobs/sha256/{dg.hex_of(image_id)}"]) == image_id
    (desc,) = json.loads(files["index.json"])["manifests"]
    assert desc["annotations"] == {"io.containerd.image.name": "docker.io/library/example:1",
                                   "org.opencontainers.image.ref.name": "1"}
    manifest = json.loads(files[f"blobs/sha256/{dg.hex_of(desc['digest'])}"])
    assert manifest["config"]["digest"] == image_id
    assert [lay["digest"] for lay in manifest["layers"]] == [sha(layer)]
    assert manifest["layers"][0]["size"] == len(layer)


def test_save_by_id_has_no_tags(src):
    image_id = make_image(src, [layer_tar(("a", b"a"))], ["example:1"])
    files = members(save_bytes(src, [dg.short_id(image_id)]))
    assert json.loads(files["manifest.json"])[0]["RepoTags"] == []
    assert "repositories" not in files
    assert "annotations" not in json.loads(files["index.json"])["manifests"][0]


def test_save_dedupes_blobs_and_merges_tags(src):
    base = layer_tar(("base", b"base"))
    one = make_image(src, [base, layer_tar(("one", b"1"))], ["one:latest", "uno:latest"])
    make_image(src, [base, layer_tar(("two", b"2"))], ["two:latest"], cmd=["two"])
    data = save_bytes(src, ["one", "uno:latest", "two:latest", one])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert len(names) == len(set(names))
    items = json.loads(members(data)["manifest.json"])
    assert [i["RepoTags"] for i in items] == [["one:latest", "uno:latest"], ["two:latest"]]
    assert items[0]["Layers"][0] == items[1]["Layers"][0]


def test_save_name_alone_saves_every_tag(src):
    make_image(src, [layer_tar(("a", b"a"))], ["app:1"])
    make_image(src, [layer_tar(("b", b"b"))], ["app:2"])
    items = json.loads(members(save_bytes(src, ["app"]))["manifest.json"])
    assert sorted(t for i in items for t in i["RepoTags"]) == ["app:1", "app:2"]


def test_save_unknown_ref_writes_nothing(src):
    make_image(src, [layer_tar(("a", b"a"))], ["example:1"])
    out = io.BytesIO()
    with pytest.raises(NotFound, match="reference does not exist"):
        saveload.save(src, ["example:1", "nosuch:latest"], out)
    assert out.getvalue() == b""


def test_save_decompresses_compressed_layer_blobs(src, dst):
    layer = layer_tar(("f", b"x" * 5000))
    packed = gzip.compress(layer)
    blob = src.content.put(packed)
    inp = LayerInput(Descriptor(mt.DOCKER_LAYER_GZIP, blob, len(packed)), sha(layer))
    image_id = src.create(config_for([sha(layer)]), [inp], ["zipped:latest"])
    data = save_bytes(src, ["zipped"])
    assert members(data)[f"blobs/sha256/{dg.hex_of(sha(layer))}"] == layer
    assert saveload.load(dst, io.BytesIO(data)) == ["Loaded image: zipped:latest"]
    assert tree(dst, image_id) == tree(src, image_id)


# --- round trips ---------------------------------------------------------------------


def test_round_trip_busybox(src, dst):
    from kade.images.bootstrap import bootstrap_busybox, find_busybox
    try:
        find_busybox()
    except FailedPrecondition as e:
        pytest.skip(str(e))
    image_id = bootstrap_busybox(src)
    data = save_bytes(src, ["busybox"])
    assert saveload.load(dst, io.BytesIO(data)) == ["Loaded image: busybox:latest"]
    assert dst.resolve("busybox:latest") == image_id
    assert dst.tags_of(image_id) == ["busybox:latest"]
    assert dst.content.read(image_id) == src.content.read(image_id)
    assert tree(dst, image_id) == tree(src, image_id)


def test_round_trip_layers_tags_and_untagged(src, dst):
    base = layer_tar(("etc", None), ("etc/os", b"kade\n"), ("bin", "->", "usr/bin"))
    top = layer_tar(("etc", None), ("etc/.wh.os", b""), ("etc/new", b"new"),
                    ("etc/hard", "=>", "etc/new"))
    tagged = make_image(src, [base, top], ["app:1", "registry.local:5000/app:2"])
    untagged = make_image(src, [base], [], cmd=["untagged"])
    lines = saveload.load(dst, io.BytesIO(save_bytes(src, ["app:1", "registry.local:5000/app:2",
                                                           untagged])))
    assert lines == ["Loaded image: app:1", "Loaded image: registry.local:5000/app:2",
                     f"Loaded image ID: {untagged}"]
    assert dst.resolve("app:1") == tagged
    assert tree(dst, tagged) == tree(src, tagged)
    assert dst.record(untagged)["layers"][0]["diff_id"] == sha(base)


def test_load_again_is_idempotent_and_moves_tags(src, dst):
    first = make_image(src, [layer_tar(("a", b"1"))], ["app:latest"])
    data = save_bytes(src, ["app"])
    saveload.load(dst, io.BytesIO(data))
    assert saveload.load(dst, io.BytesIO(data)) == ["Loaded image: app:latest"]
    other = make_image(dst, [layer_tar(("a", b"2"))], ["app:latest"])
    lines = saveload.load(dst, io.BytesIO(data))
    assert lines == [(f"The image app:latest already exists, renaming the old one with ID "
                     f"{other} to empty string"), "Loaded image: app:latest"]
    assert dst.resolve("app:latest") == first


class PipeLike:
    """A stream with read() only, returning short reads, like a pipe."""

    def __init__(self, data: bytes):
        self._f = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(min(n, 4099) if n and n > 0 else n)


def _zstd(data: bytes) -> bytes:
    import zstandard
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("compress", [lambda d: d, gzip.compress, bz2.compress, lzma.compress,
                                      _zstd], ids=["plain", "gzip", "bzip2", "xz", "zstd"])
def test_load_whole_archive_compressed_from_a_pipe(src, dst, compress):
    image_id = make_image(src, [layer_tar(("a", b"a" * 10000))], ["piped:1"])
    data = compress(save_bytes(src, ["piped:1"]))
    assert saveload.load(dst, PipeLike(data)) == ["Loaded image: piped:1"]
    assert tree(dst, image_id) == tree(src, image_id)


# --- other people's archives ---------------------------------------------------------


def docker_2010_archive(layers: list[bytes], config_bytes: bytes, tags: list[str]) -> bytes:
    """docker 20.10's `docker save`: a directory per v1 layer id, duplicate layers as
    symlinks to the first copy, the config as <id>.json; manifest.json first here."""
    config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    v1_ids = [hashlib.sha256(f"v1-{n}".encode()).hexdigest() for n in range(len(layers))]
    files: list[tuple[str, bytes | None, str | None]] = [
        ("manifest.json", json.dumps([{"Config": config_name, "RepoTags": tags,
                                       "Layers": [f"{v}/layer.tar" for v in v1_ids]}])
         .encode(), None)]
    seen: dict[bytes, str] = {}
    for v1_id, data in zip(v1_ids, layers):
        files += [(f"{v1_id}/VERSION", b"1.0", None), (f"{v1_id}/json", b"{}", None)]
        if data in seen:
            files.append((f"{v1_id}/layer.tar", None, f"../{seen[data]}/layer.tar"))
        else:
            seen[data] = v1_id
            files.append((f"{v1_id}/layer.tar", data, None))
    files.append((config_name, config_bytes, None))
    repos = {t.split(":")[0]: {t.split(":")[1]: v1_ids[-1]} for t in tags}
    files.append(("repositories", json.dumps(repos).encode(), None))
    return tar_of(files)


def test_load_docker_2010_layout(dst):
    a = layer_tar(("a", b"a"))
    b = layer_tar(("b", b"b"))
    # indented, as no re-serialisation would write it: the bytes must be kept
    config_bytes = json.dumps(config_for([sha(a), sha(b), sha(a)]), indent=2).encode()
    data = docker_2010_archive([a, b, a], config_bytes, ["old:style"])
    assert saveload.load(dst, io.BytesIO(data)) == ["Loaded image: old:style"]
    image_id = dst.resolve("old:style")
    assert image_id == sha(config_bytes)
    assert dst.content.read(image_id) == config_bytes
    assert [lay["diff_id"] for lay in dst.record(image_id)["layers"]] == [sha(a), sha(b), sha(a)]
    assert [p for _, p, *_ in tree(dst, image_id)] == ["a", "b", "a"]


def oci_archive(names: dict[str, str], *, arm_too: bool = True,
                arch: str | None = None) -> tuple[bytes, str, bytes]:
    """An OCI layout: gzip layer, a nested index (arm64 first when the host is not)."""
    layer = layer_tar(("etc", None), ("etc/oci", b"oci\n"))
    packed = gzip.compress(layer)
    config = json.dumps(config_for([sha(layer)], ["oci"])).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(packed),
                    "size": len(packed)}]}).encode()
    other_arch = "arm64" if host_arch() != "arm64" else "amd64"
    entries = [{"mediaType": mt.OCI_MANIFEST, "digest": sha(manifest), "size": len(manifest),
                "platform": {"os": "linux", "architecture": arch or host_arch()}}]
    if arm_too:
        bogus = dg.of_bytes(b"not in the archive")
        entries.insert(0, {"mediaType": mt.OCI_MANIFEST, "digest": bogus, "size": 1,
                           "platform": {"os": "linux", "architecture": other_arch}})
    nested = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                         "manifests": entries}).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": mt.OCI_INDEX, "digest": sha(nested), "size": len(nested),
         "annotations": names}]}
    blobs = [(f"blobs/sha256/{dg.hex_of(sha(b))}", b, None)
             for b in (packed, config, manifest, nested)]
    files = blobs + [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', None),
                     ("index.json", json.dumps(index).encode(), None)]
    return tar_of(files, compress=True), sha(config), layer


def test_load_oci_archive_gzipped_with_nested_index(dst):
    data, image_id, _layer = oci_archive(
        {"org.opencontainers.image.ref.name": "example.com/oci/app:v1"})
    assert saveload.load(dst, io.BytesIO(data)) == ["Loaded image: example.com/oci/app:v1"]
    assert dst.resolve("example.com/oci/app:v1") == image_id
    assert dst.record(image_id)["layers"][0]["mediaType"] == mt.OCI_LAYER_GZIP
    assert [p for _, p, *_ in tree(dst, image_id)] == ["etc", "etc/oci"]


def test_load_oci_names_prefer_containerd_annotation_and_ignore_bare_tags(dst):
    data, image_id, _ = oci_archive({"io.containerd.image.name": "docker.io/library/c:1",
                                     "org.opencontainers.image.ref.name": "1"})
    assert saveload.load(dst, io.BytesIO(data)) == ["Loaded image: c:1"]
    data, image_id, _ = oci_archive({"org.opencontainers.image.ref.name": "1"}, arm_too=False)
    assert saveload.load(dst, io.BytesIO(data)) == [f"Loaded image ID: {image_id}"]


def test_load_no_platform_for_this_host(dst):
    data, _, _ = oci_archive({}, arch="sparc")
    with pytest.raises(FailedPrecondition, match="no matching manifest"):
        saveload.load(dst, io.BytesIO(data))
    assert_nothing_loaded(dst)


# --- refusals ------------------------------------------------------------------------


def assert_nothing_loaded(images: ImageService) -> None:
    assert images.db.images() == []
    assert images.db.tags() == []
    assert images.snapshots.walk() == []


def test_load_diff_id_mismatch_names_the_layer(dst):
    a = layer_tar(("a", b"a"))
    config = json.dumps(config_for([sha(layer_tar(("a", b"other")))])).encode()
    with pytest.raises(FailedPrecondition, match='layer "[0-9a-f]{64}/layer.tar"'):
        saveload.load(dst, io.BytesIO(docker_2010_archive([a], config, ["bad:1"])))
    assert_nothing_loaded(dst)


@pytest.mark.parametrize("evil", [
    layer_tar(("../evil", b"x")),
    layer_tar(("/etc/evil", b"x")),
    layer_tar(("link", "->", "/etc"), ("link/evil", b"x")),
    layer_tar(("link", "->", "../../../../../../.."), ("link/tmp/evil", b"x")),
    layer_tar(("hard", "=>", "../../../../../../../etc/passwd")),
], ids=["dotdot", "absolute", "symlink-abs", "symlink-up", "hardlink-up"])
def test_malicious_layer_loads_nothing(dst, tmp_path, evil):
    good = layer_tar(("good", b"good"))
    good_config = json.dumps(config_for([sha(good)])).encode()
    evil_config = json.dumps(config_for([sha(good), sha(evil)], ["evil"])).encode()
    # two images: the good one first, so a half-done load would show it
    files = json.loads(members(docker_2010_archive([good], good_config, ["good:1"]))
                       ["manifest.json"])
    evil_archive = members(docker_2010_archive([good, evil], evil_config, ["evil:1"]))
    items = files + json.loads(evil_archive["manifest.json"])
    content = [(n, b, None) for n, b in evil_archive.items()
               if b is not None and n not in ("manifest.json", "repositories")]
    content.append((f"{sha(good_config)[7:]}.json", good_config, None))
    content.append(("manifest.json", json.dumps(items).encode(), None))
    with pytest.raises(InvalidArgument):
        saveload.load(dst, io.BytesIO(tar_of(content)))
    assert_nothing_loaded(dst)
    assert not os.path.exists("/etc/evil") and not os.path.exists("/tmp/evil")


@pytest.mark.parametrize("data", [b"", b"not a tar at all" * 100, gzip.compress(b"x" * 2000),
                                  tar_of([("hello", b"hi", None)])])
def test_load_refuses_non_archives(dst, data):
    with pytest.raises(InvalidArgument, match="invalid archive"):
        saveload.load(dst, io.BytesIO(data))
    assert_nothing_loaded(dst)


def test_load_missing_layer_member(dst):
    a = layer_tar(("a", b"a"))
    config = json.dumps(config_for([sha(a)])).encode()
    files = members(docker_2010_archive([a], config, ["x:1"]))
    kept = [(n, b, None) for n, b in files.items() if b is not None and "layer.tar" not in n]
    with pytest.raises(FailedPrecondition, match="layer.tar\" is missing"):
        saveload.load(dst, io.BytesIO(tar_of(kept)))
    assert_nothing_loaded(dst)
