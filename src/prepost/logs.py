"""Send a rule's messages, warnings and any traceback to its Snakemake log file."""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def log_to(path: str | Path | None):
    """Log to ``path``; on an exception write the traceback there too, then re-raise."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    try:
        yield logging.getLogger("prepost")
    except Exception:
        logging.getLogger("prepost").error("failed:\n%s", traceback.format_exc())
        raise
    finally:
        logging.shutdown()
