"""Logging set-up for command-line entry points."""

import logging
import os


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("PROMO_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
