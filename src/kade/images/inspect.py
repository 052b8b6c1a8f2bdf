"""`kade image inspect`: docker's JSON shape for an image."""

from __future__ import annotations


def inspect_image(engine, ref: str) -> dict:
    images = engine.images
    image_id = images.resolve(ref)
    rec = images.record(image_id)
    config = images.config(image_id)
    cfg = config.get("config") or {}
    from kade.oci import reference
    tags = [reference.parse(t).familiar() for t in engine.db.tags_of(image_id)]
    digests = [_familiar_digest(d) for d in rec.get("repo_digests", [])]
    container_config = config.get("container_config") or {}
    return {
        "Id": image_id, "RepoTags": tags, "RepoDigests": digests,
        "Parent": config.get("parent", ""), "Comment": _comment(config),
        "Created": config.get("created", ""), "Container": config.get("container", ""),
        "ContainerConfig": container_config, "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""), "Config": _config_shape(cfg),
        "Architecture": config.get("architecture", ""), "Os": config.get("os", ""),
        "Size": rec.get("size", 0), "VirtualSize": rec.get("size", 0),
        "GraphDriver": {"Name": engine.driver, "Data": None},
        "RootFS": {"Type": "layers", "Layers": config.get("rootfs", {}).get("diff_ids", [])},
        "Metadata": {"LastTagTime": rec.get("last_tag_time", "0001-01-01T00:00:00Z")},
    }


def _comment(config: dict) -> str:
    history = config.get("history") or []
    return history[-1].get("comment", "") if history else ""


def _config_shape(cfg: dict) -> dict:
    base = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
            "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}
    base.update(cfg)
    return base


def _familiar_digest(d: str) -> str:
    from kade.oci import reference
    name, _, digest = d.partition("@")
    return reference.parse(name, default_tag=False).familiar_name() + "@" + digest
