"""The ASGI application uvicorn imports (`intake.asgi:app`), configured from the environment and
the env file that `leadctl serve` names in `LEADS_ENV_FILE` (or `./.env`)."""

from intake.app import create_app
from leadctl.settings import Settings, SettingsError
from leadctl.text import visible

try:
    _settings = Settings.from_env()
except SettingsError as exc:
    # One line instead of an import traceback, for `uvicorn intake.asgi:app` started by hand:
    # `leadctl serve` has checked the same sources already.
    raise SystemExit(f"leadctl: error: {visible(str(exc))}") from None

app = create_app(_settings)
