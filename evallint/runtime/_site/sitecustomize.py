"""Put on PYTHONPATH by `evallint run`: every Python process the script starts has no network."""

try:
    from evallint.runtime import netguard

    netguard.install()
except ImportError:  # pragma: no cover - evallint not importable in that interpreter
    pass
