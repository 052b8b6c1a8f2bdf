"""Content-addressed blob store.

Layout under the Kade root:

    content/
      blobs/<algorithm>/<hex>     committed blobs, named by their digest, read-only
      ingest/<random>             a write in progress; never visible as a blob

Invariant: a file under blobs/ always matches its name. A writer streams into
ingest/, the digest is verified, the file is fsynced and renamed into blobs/.
A crash leaves at most a stray ingest file, which `prune_ingests` removes.
"""

from kade.content.store import ContentStore, Writer

__all__ = ["ContentStore", "Writer"]
