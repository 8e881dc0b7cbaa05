"""intake: the Litestar server — public intake form and API, staff API, email delivery worker."""

from intake.app import create_app

__all__ = ["create_app"]
