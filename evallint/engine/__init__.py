"""Layer 4: running the analysis and the rules over files, with configuration."""
