"""Writing and sending a plain-text message.

Sending goes through exactly what an authenticated client on the submission port gets
(RFC 6409): `SubmissionService.check_sender` (the account may send only as itself),
`DeliveryService.resolve` for each recipient (unknown local users refused, other
domains queued), and `SubmissionService.begin` / `finish`, which applies the sender
rules to the From field, adds Message-ID and Date (RFC 6409 §8), delivers local copies,
queues the rest for the outbound runner (DKIM-signed there) and files the Sent copy.
The webmail only turns the form into a message (`message.compose`) and an envelope.

A refused message keeps the form filled in and says why. The Received field names the
protocol as HTTP or HTTPS, from the IANA "WITH protocol types" registry.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.message import addresses
from pillarbox.message.compose import plain_text_message
from pillarbox.rules.addresses import InvalidAddress, normalize_address
from pillarbox.services.delivery import Envelope, Recipient
from pillarbox.services.errors import ServiceError
from pillarbox.web.context import WebContext, client_ip, is_tls
from pillarbox.web.sessions import WebSession

FIELDS = ("to", "cc", "bcc", "subject", "body")


class FormError(Exception):
    """Something in the form to fix; the text is shown above it."""


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _mailboxes(value: str, field: str) -> list[tuple[str, str]]:
    found = addresses(value)
    for _name, spec in found:
        try:
            normalize_address(spec)
        except InvalidAddress:
            raise FormError(f"{field}: {spec!r} is not an email address") from None
    return found


def routes(ctx: WebContext) -> list[BaseRoute]:
    services = ctx.services

    def form_page(
        request: Request, session: WebSession, values: dict[str, str], error: str = ""
    ) -> Response:
        status = 400 if error else 200
        return ctx.render(
            request, "compose.html", session, status_code=status, values=values, error=error
        )

    async def compose_get(request: Request) -> Response:
        session = ctx.signed_in(request)
        values = {name: "" for name in FIELDS}
        values["to"] = request.query_params.get("to", "")[:1000]
        return form_page(request, session, values)

    async def recipients(form: dict[str, str]) -> list[Recipient]:
        everyone = [
            *_mailboxes(form["to"], "To"),
            *_mailboxes(form["cc"], "Cc"),
            *_mailboxes(form["bcc"], "Bcc"),
        ]
        if not everyone:
            raise FormError("Add at least one recipient.")
        limit = ctx.max_recipients
        if len(everyone) > limit:
            raise FormError(f"At most {limit} recipients per message.")
        out = []
        for _name, spec in dict.fromkeys(everyone):
            out.append(await services.delivery.resolve(spec, relay_allowed=True))
        return out

    async def send(request: Request, session: WebSession, form: dict[str, str]) -> str:
        """Submit the message; returns "local" or "queued" (for the notice)."""
        account = session.account
        allowed = await services.submission.check_sender(account, account.address)
        rcpts = await recipients(form)
        data = plain_text_message(
            sender=("", account.address),
            to=_mailboxes(form["to"], "To"),
            cc=_mailboxes(form["cc"], "Cc"),
            subject=form["subject"],
            body=form["body"],
        )
        if len(data) > ctx.max_message_size:
            raise FormError(
                f"The message is larger than the limit of {ctx.max_message_size} bytes."
            )
        envelope = Envelope(
            sender=account.address,
            recipients=tuple(rcpts),
            helo="webmail",
            client_ip=client_ip(request),
            protocol="HTTPS" if is_tls(request) else "HTTP",
        )
        message = services.submission.begin(account, allowed, envelope, save_copy=True)
        await message.write(data)
        result = await message.finish()
        return "queued" if result.queue_id is not None else "local"

    async def compose_post(request: Request) -> Response:
        session = ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        values = {name: _text(form, name) for name in FIELDS}
        try:
            outcome = await send(request, session, values)
        except FormError as exc:
            return form_page(request, session, values, str(exc))
        except ServiceError as exc:
            return form_page(request, session, values, f"Not sent: {exc.text}")
        return RedirectResponse(f"/folder?f=INBOX&sent={outcome}", status_code=303)

    return [
        Route("/compose", compose_get, methods=["GET"]),
        Route("/compose", compose_post, methods=["POST"]),
    ]
