"""leadctl: lead intake for a law firm — the core library and the command-line tool."""

import sys

__version__ = "0.1.0"

# peewee imports psycopg eagerly, a large share of the CLI's start-up even when the database is
# SQLite (bench/cli_cold_start.py), and leadctl's cold start matters: hide psycopg while peewee
# loads. A PostgreSQL URL imports it on demand
# (leadctl.db.Psycopg3Database), so nothing is lost.
if "peewee" not in sys.modules and "psycopg" not in sys.modules:
    sys.modules["psycopg"] = None  # type: ignore[assignment]
    try:
        import peewee  # noqa: F401
    finally:
        del sys.modules["psycopg"]
