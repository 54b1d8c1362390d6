"""Hearth's composition: the app, its configuration, the HTTP API, storage and the CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hearth")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
