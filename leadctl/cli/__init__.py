"""The `leadctl` command-line tool: thin Typer commands over one Backend, one renderer."""
