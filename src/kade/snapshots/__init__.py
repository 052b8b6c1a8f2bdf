"""Snapshotters: layered filesystems made of committed layers and active tops.

Vocabulary (containerd's): a *key* names an active snapshot, one that can be
written; a *name* names a committed one, read-only forever, usually a layer's
chainID. `prepare(key, parent)` makes an active snapshot on top of the committed
`parent`; `commit(name, key)` freezes it; `mounts(key)` says how to see it.

    s = open_snapshotter(root, "overlay", db)
    s.prepare("extract-1-ab", parent=None)       # empty active snapshot
    archive.apply_layer(tar, s.upper_dir("extract-1-ab"))
    s.commit("sha256:<chainid>", "extract-1-ab")  # now a shared layer
    mounts = s.prepare("<container id>", parent="sha256:<chainid>")

Layout under the Kade root:

    snapshots/<driver>/<num>/fs      the snapshot's own files (overlay: its upperdir)
    snapshots/<driver>/<num>/work    overlay's workdir (active snapshots only)
    snapshots/<driver>/<num>.removing   a snapshot being removed (renamed first)

Invariant: the metadata row is written before the directory exists and removed
after it is gone, so a crash leaves a row without a directory, a `.removing` tree
(`strays`), or nothing at all, never an unknown directory holding data. A layer
is extracted into an active snapshot keyed `extract-<pid>-<random>`; one whose
process is dead is `abandoned`, and `reap` (run by every unpack, `system df` and
prune) removes it.
"""

from kade.snapshots.base import Info, Snapshotter, open_snapshotter, read_file

__all__ = ["Info", "Snapshotter", "open_snapshotter", "read_file"]
