"""Send a rule's messages, warnings and any traceback to its Snakemake log file."""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path


def is_user_error(err: BaseException) -> bool:
    """prepost's own error classes (PairingError, CountTableError, DownloadError, ...) carry a
    message that names the file, key and fix: the input is wrong, not the code. Built-in
    exceptions (KeyError, TypeError, ...) are bugs and keep their traceback on screen."""
    return isinstance(err, (ValueError, RuntimeError, OSError)) and type(err).__module__.startswith("prepost.")


@contextmanager
def log_to(path: str | Path | None):
    """Log to ``path`` and stderr. On a user error (is_user_error) the traceback goes to the
    log file only and stderr gets the one-line message, then the process exits with status 1;
    any other exception is logged with its traceback and re-raised."""
    file_handler = None
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(path, mode="w")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file_handler is not None:
        handlers.append(file_handler)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    log = logging.getLogger("prepost")
    try:
        yield log
    except Exception as err:
        if not is_user_error(err):
            log.error("failed:\n%s", traceback.format_exc())
            raise
        if file_handler is not None:
            file_handler.stream.write(f"prepost: {err}\n\nTraceback, for a bug report:\n{traceback.format_exc()}")
            file_handler.flush()
        where = f" (traceback in {path})" if path else ""
        print(f"prepost: {err}{where}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    finally:
        logging.shutdown()
