"""leadctl: lead intake for a law firm — the core library and the command-line tool."""

__version__ = "0.1.0"
