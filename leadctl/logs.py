"""Log lines of the server and its delivery process: plain text, or one JSON object per line."""

from __future__ import annotations

from typing import Any

LOG_FORMATS = ("text", "json")


def log_config(log_format: str = "text") -> dict[str, Any]:
    """uvicorn's, intake's and leadctl's loggers on stderr: plain lines, or one JSON object each
    (`time`, `level`, `logger`, `message`, and an access line's own fields)."""
    formatter: dict[str, Any] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    if log_format == "json":
        from pythonjsonlogger.core import RESERVED_ATTRS

        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],  # uvicorn's copy with colours
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lines": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "lines",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
            for name in ("uvicorn", "intake", "leadctl")
        },
    }


def configure(log_format: str) -> None:
    """The same lines in a process uvicorn did not configure (the delivery process)."""
    import logging.config  # not at import time: settings (and so every command) import LOG_FORMATS

    logging.config.dictConfig(log_config(log_format))
