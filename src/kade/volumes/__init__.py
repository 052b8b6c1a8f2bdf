"""Volumes: the local driver, mount planning and docker's copy-up.

    <root>/volumes/<name>/_data      a named or anonymous volume's data

A new (or empty) volume mounted where the image has files gets a copy of those
files before the container first starts, as in docker. Anonymous volumes are
made for the image's VOLUME paths no user mount covers.
"""

from kade.volumes.service import PlannedMount, VolumeService, parse_mount, parse_tmpfs, parse_volume

__all__ = ["PlannedMount", "VolumeService", "parse_mount", "parse_tmpfs", "parse_volume"]
