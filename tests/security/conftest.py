"""The security suite's shared fixture: `probe`, the static attack program (attack_probe)."""

from attack_probe import probe  # noqa: F401 - a fixture, offered to every module here
