"""The engine's registry verbs: pull, push, login, logout, and the image a new
container needs (`ensure_image`, docker's --pull always|missing|never).

Registry settings come from the Kade root or /etc/kade (kade.remotes.hosts),
credentials from docker's config.json (kade.remotes.credentials), so a login
made by docker works here and the other way round. Progress goes out as
docker's JSON messages to `emit` (kade.remotes.progress).
"""

from __future__ import annotations

import os
import sys

from kade.errors import NotFound

STAGING = ("distribution", "unpack")  # under the root: layers extracted before they commit


def session(engine, credentials=None):
    """A registry session for one command."""
    from kade.remotes.client import Session
    from kade.remotes.credentials import DockerConfig
    from kade.remotes.hosts import Hosts
    from kade.remotes.transport import HTTPTransport
    hosts = Hosts.load(engine.root)
    creds = credentials or DockerConfig().get
    return Session(hosts, creds, HTTPTransport(hosts.certs_dir, insecure=hosts.insecure))


def _sources(engine):
    from kade.remotes.sources import BlobSources
    return BlobSources(engine.root)


def pull(engine, ref: str, *, all_tags: bool = False, platform: str | None = None,
         emit=None, credentials=None) -> list:
    """Pull a tag, a digest or (all_tags) every tag; returns PullResults and emits
    docker's messages, the final "Status: ..." included. credentials: host ->
    Credential, instead of docker's config.json (the API's X-Registry-Auth)."""
    from kade.images.pull import Puller
    from kade.oci import reference
    from kade.remotes.progress import discard, message
    emit = emit or discard
    parsed = reference.parse(ref, default_tag=not all_tags)
    if all_tags and (parsed.tag or parsed.digest):
        from kade.errors import InvalidArgument
        raise InvalidArgument("tag can't be used with --all-tags/-a")
    s = session(engine, credentials)
    try:
        puller = Puller(engine.images, s, sources=_sources(engine), emit=emit,
                        platform=platform, staging=os.path.join(engine.root, *STAGING))
        results = puller.pull_all_tags(parsed) if all_tags else [puller.pull(parsed)]
    finally:
        s.close()
    if all_tags:
        newer = any(r.status.startswith("Downloaded") for r in results)
        what = "Downloaded newer image for" if newer else "Image is up to date for"
        emit(message(f"Status: {what} {parsed.familiar_name()}"))
    else:
        emit(message(f"Status: {results[0].status}"))
    return results


pull_image = pull  # ensure_image's parameter `pull` shadows the verb


def push(engine, ref: str, *, all_tags: bool = False, compression: str = "gzip",
         emit=None, credentials=None) -> list:
    from kade.images.push import Pusher
    from kade.oci import reference
    from kade.remotes.progress import discard, message
    emit = emit or discard
    parsed = reference.parse(ref, default_tag=not all_tags)
    if parsed.digest:
        from kade.errors import InvalidArgument
        raise InvalidArgument(f'cannot push a digest reference "{ref}"; push a tag')
    refs = _local_tags(engine, parsed) if all_tags else [parsed]
    emit(message(f"The push refers to repository [{parsed.repository}]"))
    s = session(engine, credentials)
    try:
        pusher = Pusher(engine.images, s, sources=_sources(engine), emit=emit,
                        compression=compression)
        return [pusher.push(r) for r in refs]
    finally:
        s.close()


def _local_tags(engine, parsed) -> list:
    from kade.oci import reference
    refs = [reference.parse(name) for name, _ in engine.images.db.tags()]
    refs = sorted((r for r in refs if r.repository == parsed.repository), key=str)
    if not refs:
        raise NotFound(f"an image does not exist locally with the tag: {parsed.familiar_name()}")
    return refs


def login(engine, registry: str | None, username: str, password: str) -> tuple[str, str]:
    """Check the credentials against the registry's /v2/, then store them.
    Returns (server key, where they were stored)."""
    from kade.remotes.credentials import DockerConfig
    domain, cred = check_login(engine, registry, username, password)
    from kade.remotes.credentials import server_key
    return server_key(domain), DockerConfig().store(domain, cred)


def check_login(engine, registry: str | None, username: str, password: str):
    """Check the credentials against the registry's /v2/ (the API's /auth stores
    nothing: its client does). Returns (domain, credential)."""
    from kade.errors import Forbidden
    from kade.remotes import errcode
    from kade.remotes.auth import Credential
    from kade.remotes.credentials import hostname, server_key
    from kade.oci.reference import DEFAULT_DOMAIN
    domain = hostname(registry) if registry else DEFAULT_DOMAIN
    domain = DEFAULT_DOMAIN if server_key(domain) == server_key(DEFAULT_DOMAIN) else domain
    cred = Credential(username, password)
    s = session(engine, credentials=lambda host: cred)
    try:
        s.ping(domain)
    except errcode.RegistryError as e:
        if e.status in (401, 403):
            raise Forbidden(f"login to {domain} failed: {e.detail or e}") from None
        raise
    finally:
        s.close()
    return domain, cred


def stored_login(registry: str | None):
    """The credential docker's config holds for a registry, or None."""
    from kade.oci.reference import DEFAULT_DOMAIN
    from kade.remotes.credentials import DockerConfig
    return DockerConfig().get(registry or DEFAULT_DOMAIN)


def logout(registry: str | None) -> str:
    from kade.oci.reference import DEFAULT_DOMAIN
    from kade.remotes.credentials import DockerConfig, server_key
    DockerConfig().erase(registry or DEFAULT_DOMAIN)
    return server_key(registry or DEFAULT_DOMAIN)


def ensure_image(engine, ref: str, pull: str = "missing", quiet: bool = False,
                 platform: str | None = None, out=None) -> str:
    """The image id for a new container, pulling it as docker run does: with
    "missing", "Unable to find image 'X' locally" and the pull's lines go to
    stderr first; "always" pulls every time; "never" only looks locally."""
    images = engine.images
    image_id = images.try_resolve(ref)
    if image_id and pull != "always":
        return image_id
    if pull == "never":
        raise NotFound(f"no such image: {ref}")
    from kade.oci import reference
    from kade.remotes.progress import Display, discard
    out = out or sys.stderr
    parsed = reference.parse(ref)
    if not quiet and image_id is None:
        out.write(f"Unable to find image '{parsed.familiar()}' locally\n")
        out.flush()
    pull_image(engine, str(parsed), platform=platform, emit=discard if quiet else Display(out))
    return images.resolve(str(parsed))
