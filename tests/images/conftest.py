"""The image-building fixtures (tests/containers.py) for this folder's session."""

from tests.containers import bases, images, podman  # noqa: F401 (fixtures)
