"""Admin commands: serve, and (local mode) release and purge-quarantine.

attorney and token: attorney_commands; outbox and mail: mail_commands; db: db_commands.
"""

from typing import Annotated

import typer

from leadctl.cli.context import Env, UsageError, pick_format
from leadctl.cli.lead_commands import JsonOpt, YesOpt


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the intake server (public form, intake API, staff API, mail worker) under uvicorn."""
    import os
    import shutil
    import tempfile

    import uvicorn

    from leadctl.envfile import ENV_FILE_VARIABLE, find_env_file
    from leadctl.logs import log_config

    env: Env = ctx.obj
    if env.db_url:
        os.environ["LEADS_DATABASE_URL"] = env.db_url  # worker processes read the environment
    settings = env.settings  # a bad setting fails now, in one line, not in the server's log
    if workers > 1 and settings.database_url.startswith("sqlite:"):
        # SQLite lets one process write at a time: a second one only waits on its lock (50-65 %
        # of the time, p99 over 1 s in bench/RESULTS.md), and the rate limit is per process.
        raise UsageError(
            f"--workers {workers} needs PostgreSQL: SQLite takes writes from one process, so "
            "serve it with one worker, or set LEADS_DATABASE_URL=postgresql://… to run several"
        )
    found = find_env_file(os.environ, env.env_file)
    if found is not None:
        os.environ[ENV_FILE_VARIABLE] = str(found[0])  # worker processes read the same file
    metrics_dir = None
    if settings.metrics and workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker counts into files here, so any worker's /metrics sums them all.
        metrics_dir = tempfile.mkdtemp(prefix="leadctl-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "intake.asgi:app",
            host=host,
            port=port,
            workers=workers,
            access_log=False,  # intake logs one line per request itself, with the lead reference
            log_config=log_config(settings.log_format),
            timeout_graceful_shutdown=20,
            timeout_keep_alive=5,
            # The request head bounded in size and time (httptools has no limit of its own).
            http="intake.httpd:BoundedHttpToolsProtocol",
            # LEADS_TRUSTED_PROXIES alone says who the client is: uvicorn's own X-Forwarded-For
            # handling would trust any local client's header.
            proxy_headers=False,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


# -- quarantine ----------------------------------------------------------------------------------


def release(
    ctx: typer.Context,
    lead: Annotated[str, typer.Argument(help="Id or reference of a quarantined lead.")],
    json_: JsonOpt = False,
) -> None:
    """Turn a quarantined lead into a real one: assigned, its two emails queued."""
    from leadctl import submissions

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    # Suspected spam is an admin's to read (`list --quarantined`) and to let through: a release
    # mails the prospect and an attorney.
    data = submissions.release(lead, env.admin("release"), env.settings)
    out.obj(
        data,
        lambda d: f"lead {d['id']} released and assigned to {d['attorney'] or 'the intake inbox'}",
    )


def purge_quarantine(
    ctx: typer.Context,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Delete quarantined leads older than this.")
    ] = "30d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count them; delete nothing.")] = False,
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Delete quarantined leads (suspected spam) older than 30 days, with their resumes."""
    from leadctl import submissions
    from leadctl.timeutil import parse_duration

    env: Env = ctx.obj
    out = env.output(pick_format(json_))
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    env.open_database()
    if not dry_run:
        env.confirm(f"Delete quarantined leads older than {older_than}?", yes=yes, destructive=True)
    count = submissions.purge_quarantine(age, dry_run=dry_run)
    data = {"deleted": 0 if dry_run else count, "would_delete": count if dry_run else 0}
    out.obj(
        data,
        lambda d: f"would delete {count}" if dry_run else f"deleted {count} quarantined lead(s)",
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("release")(release)
    app.command("purge-quarantine")(purge_quarantine)
