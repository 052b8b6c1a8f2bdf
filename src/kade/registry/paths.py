"""Where everything lives in the storage driver: the registry's on-disk layout.

The layout is distribution's (Debian's docker-registry), so one directory can be
served by either; Kade adds only `_manifests/referrers`, which distribution
ignores.

    <root>/docker/registry/v2
    ├── blobs
    │   └── <algorithm>                                      sha256 | sha512
    │       └── <first two hex digits>
    │           └── <hex digest>
    │               └── data                                 the blob's bytes (manifests too)
    └── repositories
        └── <name>                                           a directory per name component
            ├── _layers
            │   └── <algorithm>/<hex digest>/link            "the blob is in this repository"
            ├── _manifests
            │   ├── revisions
            │   │   └── <algorithm>/<hex digest>/link        "the manifest is in this repository"
            │   ├── tags
            │   │   └── <tag>
            │   │       ├── current/link                     the digest the tag points at
            │   │       └── index/<algorithm>/<hex digest>/link   every digest it pointed at
            │   └── referrers
            │       └── <algorithm>/<hex digest>             a subject's digest
            │           └── <algorithm>-<hex digest>         a referrer's descriptor (JSON)
            └── _uploads
                └── <upload id>
                    ├── data                                 the bytes received so far
                    └── startedat                            RFC 3339 time of the POST

A `link` file holds a digest (`sha256:...`). Invariants:
- a blob's `data` appears only by rename, after its digest was verified, so
  whatever is under `blobs/` is whole and correct;
- a link is written only after the blob it names exists, and removed first;
- upload ids are random hex, and never outlive their upload.
"""

from __future__ import annotations

ROOT = "/docker/registry/v2"
BLOBS = f"{ROOT}/blobs"
REPOSITORIES = f"{ROOT}/repositories"


def _split(digest: str) -> tuple[str, str]:
    algo, _, hexpart = digest.partition(":")
    return algo, hexpart


def blob_dir(digest: str) -> str:
    algo, hexpart = _split(digest)
    return f"{BLOBS}/{algo}/{hexpart[:2]}/{hexpart}"


def blob_data(digest: str) -> str:
    return blob_dir(digest) + "/data"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layers(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_layers"


def layer_dir(name: str, digest: str) -> str:
    algo, hexpart = _split(digest)
    return f"{REPOSITORIES}/{name}/_layers/{algo}/{hexpart}"


def layer_link(name: str, digest: str) -> str:
    return layer_dir(name, digest) + "/link"


def manifests(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests"


def revisions(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions"


def revision_dir(name: str, digest: str) -> str:
    algo, hexpart = _split(digest)
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{algo}/{hexpart}"


def revision_link(name: str, digest: str) -> str:
    return revision_dir(name, digest) + "/link"


def tags(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/current/link"


def tag_index_link(name: str, tag: str, digest: str) -> str:
    algo, hexpart = _split(digest)
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/index/{algo}/{hexpart}/link"


def referrers(name: str, subject: str) -> str:
    algo, hexpart = _split(subject)
    return f"{REPOSITORIES}/{name}/_manifests/referrers/{algo}/{hexpart}"


def referrer(name: str, subject: str, digest: str) -> str:
    algo, hexpart = _split(digest)
    return f"{referrers(name, subject)}/{algo}-{hexpart}"


def uploads(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads"


def upload_data(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/data"


def upload_started(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/startedat"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}"
