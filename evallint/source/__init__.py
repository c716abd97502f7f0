"""Layer 1: files, bytes, text and the one LibCST parse per file."""
