"""The ASGI application uvicorn imports (`intake.asgi:app`), configured from the environment and
the env file that `leadctl serve` names in `LEADS_ENV_FILE` (or `./.env`)."""

from intake.app import create_app
from leadctl.errors import LeadctlError
from leadctl.settings import Settings, SettingsError
from leadctl.text import visible

try:
    app = create_app(Settings.from_env())
except (SettingsError, LeadctlError) as exc:
    # One line instead of an import traceback (a bad setting, a firm template that does not
    # render), for `uvicorn intake.asgi:app` started by hand: `leadctl serve` says the same.
    raise SystemExit(f"leadctl: error: {visible(str(exc))}") from None
