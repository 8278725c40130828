"""corpusclean stages: plain, typed functions over batches, and thin Prefect task wrappers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("corpusclean")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
