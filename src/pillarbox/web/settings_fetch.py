"""Settings: the user's accounts at other providers to fetch mail from (issue 15).

The fields are those of `pillarbox fetch add`, checked by `FetchSourceService`, the rules
the CLI applies. The password is write-only: it is never put into a page, not even back
into a refused form, and an empty password field on the edit form keeps the stored one.
Saving an edited source resumes it if it was paused (three authentication failures in a
row), since the issue pauses a source "until the user edits it"; Resume does the same
without an edit.

"Fetch now" goes through `services.fetch_now`, which the running fetcher registered
(`app.py`): the webmail never imports `fetcher/`. The run happens in the fetcher's worker
threads; this request awaits it without blocking the event loop, then shows how many
messages arrived, or why none could.

Must not: touch the store, or show a password or its ciphertext.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.model.fetch import FetchSource, RemoteAction
from pillarbox.services.errors import AccountError, ServiceError
from pillarbox.services.fetch_sources import DEFAULT_INTERVAL, MIN_INTERVAL, SourceRequest
from pillarbox.web.context import WebContext
from pillarbox.web.sessions import WebSession
from pillarbox.web.settings_forms import SettingsPage, number, text, whole_number

NOTICES = {
    "source-added": "Source added; its first fetch starts shortly.",
    "source-saved": "Source saved.",
    "source-removed": "Source removed.",
    "source-resumed": "Source resumed.",
}
MAX_FOLDERS = 100  # source folders of one IMAP source
ALL_FOLDERS = "*"  # as `pillarbox fetch add --all-folders` (fetcher.mirror.ALL_FOLDERS)


@dataclass
class SourceForm:
    """What the source form shows: the values as entered, never a password."""

    id: int = 0
    protocol: str = "imap"
    host: str = ""
    port: str = ""
    security: str = "tls"
    username: str = ""
    remote: str = "keep"  # keep, delete, delete-after
    days: str = "30"
    folder: str = "INBOX"
    source_folders: str = ""  # one per line
    all_folders: bool = False  # IMAP: mirror every folder
    interval: str = str(DEFAULT_INTERVAL)

    @classmethod
    def of(cls, source: FetchSource) -> SourceForm:
        return cls(
            id=source.id,
            protocol=source.protocol.value,
            host=source.host,
            port=str(source.port),
            security=source.security.value,
            username=source.username,
            remote=source.policy.action.value,
            days=str(source.policy.days or 30),
            folder=source.target_folder,
            source_folders="\n".join(f for f in source.source_folders if f != ALL_FOLDERS),
            all_folders=ALL_FOLDERS in source.source_folders,
            interval=str(source.interval),
        )

    @classmethod
    def read(cls, form: FormData) -> SourceForm:
        return cls(
            id=number(form, "id"),
            protocol=text(form, "protocol"),
            host=text(form, "host").strip(),
            port=text(form, "port").strip(),
            security=text(form, "security"),
            username=text(form, "username"),
            remote=text(form, "remote"),
            days=text(form, "days").strip(),
            folder=text(form, "folder").strip() or "INBOX",
            source_folders=text(form, "source_folders"),
            all_folders=text(form, "all_folders") == "yes",
            interval=text(form, "interval").strip(),
        )

    def request(self, password: str) -> SourceRequest:
        """The service's request; AccountError for a field that is no number."""
        port = None
        if self.port:
            port = whole_number(self.port)
            if port is None:
                raise AccountError("the port is a number (empty: the protocol's default)")
        interval = whole_number(self.interval)
        if interval is None:
            raise AccountError(f"the interval is a number of seconds, at least {MIN_INTERVAL}")
        policy = self.remote
        if policy == RemoteAction.DELETE_AFTER.value:
            policy = f"{policy}:{self.days}"
        folders = [f.strip() for f in self.source_folders.splitlines() if f.strip()]
        if self.all_folders:
            folders.insert(0, ALL_FOLDERS)  # with names too: the service refuses both
        if len(folders) > MAX_FOLDERS:
            raise AccountError(f"at most {MAX_FOLDERS} source folders")
        return SourceRequest(
            protocol=self.protocol,
            host=self.host,
            port=port,
            security=self.security,
            username=self.username,
            password=password,
            policy=policy,
            target_folder=self.folder,
            source_folders=folders,
            interval=interval,
        )


def routes(ctx: WebContext, page: SettingsPage) -> list[BaseRoute]:
    sources = ctx.services.fetch_sources
    fetch_now = ctx.services.fetch_now

    def form_page(
        request: Request, session: WebSession, values: SourceForm, error: str = ""
    ) -> Response:
        return ctx.render(
            request,
            "settings_source.html",
            session,
            status_code=400 if error else 200,
            values=values,
            error=error,
            min_interval=MIN_INTERVAL,
        )

    async def owned(session: WebSession, source_id: int) -> FetchSource:
        """The signed-in account's source of that id; 404 for any other (another
        account's id looks exactly like one that does not exist)."""
        try:
            return await sources.get(session.account.address, source_id)
        except AccountError:
            raise HTTPException(404) from None

    async def new_get(request: Request) -> Response:
        session = await ctx.signed_in(request)
        return form_page(request, session, SourceForm())

    async def edit_get(request: Request) -> Response:
        session = await ctx.signed_in(request)
        source_id = whole_number(request.query_params.get("id", ""))
        if source_id is None:
            raise HTTPException(404)
        return form_page(request, session, SourceForm.of(await owned(session, source_id)))

    async def save_post(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        values = SourceForm.read(form)
        password = text(form, "password")
        address = session.account.address
        try:
            wanted = values.request(password)
            if values.id:
                await owned(session, values.id)
                await sources.update(address, values.id, wanted)
            else:
                await sources.add(address, wanted)
        except AccountError as exc:
            return form_page(request, session, values, f"{exc}.")
        fetch_now.sources_changed()
        key = "source-saved" if values.id else "source-added"
        return RedirectResponse(f"/settings?done={key}#fetch", status_code=303)

    async def remove_post(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        source = await owned(session, number(form, "id"))
        await sources.remove(session.account.address, source.id)
        fetch_now.sources_changed()
        return RedirectResponse("/settings?done=source-removed#fetch", status_code=303)

    async def resume_post(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        source = await owned(session, number(form, "id"))
        await sources.resume(session.account.address, source.id)
        fetch_now.sources_changed()
        return RedirectResponse("/settings?done=source-resumed#fetch", status_code=303)

    async def run_post(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        source = await owned(session, number(form, "id"))
        try:
            outcome = await fetch_now.run(source.id)
        except (AccountError, ServiceError) as exc:
            why = exc.text if isinstance(exc, ServiceError) else str(exc)
            return await page(request, session, errors={"fetch": f"Not fetched: {why}"})
        if outcome.error:
            arrived = f" ({outcome.fetched} arrived before it)" if outcome.fetched else ""
            error = f"Fetching from {source.host} failed: {outcome.error}{arrived}"
            return await page(request, session, errors={"fetch": error})
        return RedirectResponse(
            f"/settings?done=fetched&n={outcome.fetched}#fetch", status_code=303
        )

    return [
        Route("/settings/fetch/new", new_get, methods=["GET"]),
        Route("/settings/fetch/edit", edit_get, methods=["GET"]),
        Route("/settings/fetch/save", save_post, methods=["POST"]),
        Route("/settings/fetch/remove", remove_post, methods=["POST"]),
        Route("/settings/fetch/resume", resume_post, methods=["POST"]),
        Route("/settings/fetch/run", run_post, methods=["POST"]),
    ]
