"""Image references, normalised the way docker does.

    busybox                 -> docker.io/library/busybox:latest
    user/app:1              -> docker.io/user/app:1
    localhost:5000/app      -> localhost:5000/app:latest
    app@sha256:<hex>        -> docker.io/library/app@sha256:<hex>

`familiar()` gives the short form docker prints (busybox:latest).
"""

from __future__ import annotations

from collections import namedtuple

from kade.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = (r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*"
           r"[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_FULL = None


def _full():
    global _FULL
    if _FULL is None:
        import re  # only here: `kade images` lists stored names without it (parse_stored)
        name = rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
        _FULL = re.compile(rf"^{name}(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
    return _FULL


class Reference(namedtuple("Reference", "domain path tag digest", defaults=(None, None))):
    __slots__ = ()

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        return self.path.removeprefix("library/")

    def familiar(self) -> str:
        return self.familiar_name() + self._suffix()

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:  # noqa: D105 - the full normalised form
        return self.repository + self._suffix()

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return DEFAULT_DOMAIN, name


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise; raises InvalidArgument with docker's wording."""
    if not text or len(text) > 255 + 72:
        raise InvalidArgument(f'invalid reference format: "{text}"')
    m = _full().match(text)
    if not m:
        if _full().match(text.lower()):
            name = text.partition("@")[0].rsplit(":", 1)[0] if "@" not in text else text
            raise InvalidArgument(
                f"invalid reference format: repository name ({name}) must be lowercase")
        raise InvalidArgument(f'invalid reference format: "{text}"')
    full_name = (m.group("domain") + "/" if m.group("domain") else "") + m.group("path")
    domain, path = _split_domain(full_name)
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    tag, digest = m.group("tag"), m.group("digest")
    if tag is None and digest is None and default_tag:
        tag = "latest"
    return Reference(domain, path, tag, digest)


def parse_stored(name: str) -> Reference:
    """A name as parse() normalised it (the store's tags), split without the pattern.

    Listing images splits every tag; the full pattern costs `re` and its compile,
    some 5 ms of a `kade images`, for names that were checked when they were stored.
    """
    rest, _, digest = name.partition("@")
    domain, _, path = rest.partition("/")
    repo, colon, tag = path.rpartition(":")
    if not colon or "/" in tag:
        repo, tag = path, ""
    return Reference(domain, repo, tag or None, digest or None)


def parse_repository(text: str) -> Reference:
    """A name without tag or digest (for `kade images REPO`)."""
    return parse(text, default_tag=False)
