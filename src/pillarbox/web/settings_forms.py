"""Reading the settings forms' fields, shared by `settings` and `settings_fetch`."""

from __future__ import annotations

from typing import Protocol

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from pillarbox.web.sessions import WebSession


class SettingsPage(Protocol):
    """Renders the settings page, with errors beside the forms they belong to."""

    async def __call__(
        self,
        request: Request,
        session: WebSession,
        *,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response: ...


def text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def whole_number(value: str) -> int | None:
    """A non-negative whole number of sensible size, or None."""
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 12 else None


def number(form: FormData, name: str) -> int:
    """A non-negative whole number from the form; 0 when absent or not a number."""
    return whole_number(text(form, name)) or 0
