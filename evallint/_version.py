"""The version, in a leaf module: the cache keys entries by it without importing the package
root (which imports the engine)."""

__version__ = "0.2.0"
