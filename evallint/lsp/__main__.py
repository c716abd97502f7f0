"""`python -m evallint.lsp`: the language server on stdio."""

from evallint.lsp import main

if __name__ == "__main__":
    main()
