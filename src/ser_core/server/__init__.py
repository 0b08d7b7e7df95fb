"""`ser serve`: ser_core over HTTP (needs `pip install 'ser-core[serve]'`).

`ser_core.server.app` is an ASGI app built from the settings on first use, for any ASGI server
(`uvicorn ser_core.server:app`); `ser_core.server.api.create_app(...)` builds one with options.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from ser_core.server.api import create_app

        globals()["app"] = built = create_app()
        return built
    raise AttributeError(name)
