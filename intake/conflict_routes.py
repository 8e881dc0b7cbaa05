"""(being written this session)"""

from typing import Any

ROUTES: list[Any] = []
