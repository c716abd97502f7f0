"""`python -m evallint` is the `evallint` command."""

from evallint.cli import main

raise SystemExit(main())
