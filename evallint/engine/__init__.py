"""Layer 4: running the analysis and the rules over files, with configuration."""


def log_debug(logger: str, message: str, *args: object, exc_info: bool = False) -> None:
    """Log at debug level to `logger`; `logging` is imported only when something is logged
    (its import is a visible share of a warm run's start-up)."""
    import logging

    logging.getLogger(logger).debug(message, *args, exc_info=exc_info)
