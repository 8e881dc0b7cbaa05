"""The ASGI application uvicorn imports (`intake.asgi:app`), configured from the environment."""

from intake.app import create_app

app = create_app()
