"""The console's routes, under /console: login and logout, the fleet, an instance, fleet migrations.

Pages are rendered on the server (Jinja2, autoescaped) from hearth.console.pages; every page but the login
page first has the session's token judged by the API's TokenValidator (`app.state.tokens`), so the console
is exactly as authorised as the REST API: an admin token sees every project, a tenant's token its own.
Answers are never cached (`Cache-Control: no-store`) and may not be framed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from hearth import service
from hearth.console import pages
from hearth.console.session import COOKIE, COOKIE_MAX_AGE, COOKIE_PATH, ConsoleUser, LoginFailed, login, seal, unseal
from hearth.runtime import Runtime

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
STATIC_FILES = {"console.css": "text/css"}
MAX_FORM_BYTES = 8192
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'",
}

router = APIRouter(prefix="/console", include_in_schema=False)


def _duration(seconds: float | None) -> str:
    """Seconds as people read them: 42 ms, 3.4 s, 2 min 05 s."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _badge(status: str | None) -> str:
    """The CSS class of a status badge: good, busy, bad, idle or warn."""
    value = (status or "").upper()
    if value in ("ACTIVE", "HEALTHY", "SUCCEEDED", "MOVED", "FINISHED", "CREATE_COMPLETE", "UPDATE_COMPLETE",
                 "ADOPT_COMPLETE"):
        return "good"
    if value in ("ERROR", "FAILED", "BUILDING_ERROR") or value.endswith("_FAILED"):
        return "bad"
    if value in ("BUILD", "RESIZE", "REBOOT", "REBUILD", "RUNNING", "MOVING", "BACKUP") \
            or value.endswith("_IN_PROGRESS"):
        return "busy"
    if value in ("QUEUED", "WAITING", "PAUSED", "REFUSED", "RESTART_REQUIRED", "UNKNOWN"):
        return "warn"
    return "idle"


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["duration"] = _duration
templates.env.filters["badge"] = _badge


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status, headers=SECURITY_HEADERS)


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _to_login(clear: bool = False) -> Response:
    response = RedirectResponse("/console/login", status_code=303, headers=SECURITY_HEADERS)
    if clear:
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


def _signed_in(request: Request) -> tuple[ConsoleUser, Any] | Response:
    """The session's user and Keystone's verdict on its token (the API's validator), or the answer to give
    instead: to the login page when there is no session or Keystone no longer accepts its token."""
    user = unseal(_runtime(request), request.cookies.get(COOKIE))
    if user is None:
        return _to_login(clear=COOKIE in request.cookies)
    try:
        principal = request.app.state.tokens.validate(user.token)
    except service.ServiceError as err:
        if err.status == 401:
            return _to_login(clear=True)
        return _error(request, None, err.status, "The identity service is unavailable",
                      "Hearth could not check your session with Keystone. Try again in a moment.")
    return user, principal


def _chrome(user: ConsoleUser | None, principal: Any, section: str) -> dict[str, Any]:
    """What the page header shows: who is signed in, in which project, with which role."""
    if user is None:
        return {"user": None, "section": section}
    return {"user": {"name": user.username, "project": user.project_name, "project_id": principal.project_id,
                     "admin": principal.is_admin}, "section": section}


def _error(request: Request, who: tuple[ConsoleUser, Any] | None, status: int, title: str, text: str) -> Response:
    context = _chrome(*(who or (None, None)), section="") | {"status": status, "title": title, "text": text}
    return _render(request, "error.html", context, status=status)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's stylesheet and script (an allow-list: nothing else on disk is reachable)."""
    if name not in STATIC_FILES or not (STATIC / name).is_file():
        return Response("Not found", status_code=404, media_type="text/plain")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"})


@router.get("/login")
def login_form(request: Request) -> Response:
    who = _signed_in(request) if COOKIE in request.cookies else None
    if isinstance(who, tuple):
        return RedirectResponse("/console/", status_code=303, headers=SECURITY_HEADERS)
    response = _render(request, "login.html", _chrome(None, None, "login") | {"username": "", "project": "demo"})
    if isinstance(who, Response):  # a stale or foreign cookie: drop it
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


@router.post("/login")
async def login_submit(request: Request) -> Response:
    """Password authentication against the cloud's Keystone; the token goes into the sealed cookie only."""
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"), keep_blank_values=True) \
        if len(body) <= MAX_FORM_BYTES else {}
    username = (form.get("username") or [""])[0].strip()
    password = (form.get("password") or [""])[0]
    project = (form.get("project") or ["demo"])[0].strip() or "demo"
    context = _chrome(None, None, "login") | {"username": username[:255], "project": project[:255]}
    if not username or not password:
        return _render(request, "login.html", context | {"error": "Enter your username and password."}, 400)
    runtime = _runtime(request)
    try:
        user = await run_in_threadpool(login, runtime, username, password, project)
        await run_in_threadpool(request.app.state.tokens.validate, user.token)
    except LoginFailed as err:
        log.info("console sign-in refused for user %r in project %r", username[:64], project[:64])
        return _render(request, "login.html", context | {"error": err.message}, err.status)
    except service.ServiceError as err:
        return _render(request, "login.html", context | {"error": err.message}, err.status)
    response = RedirectResponse("/console/", status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(COOKIE, seal(runtime, user), max_age=COOKIE_MAX_AGE, path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    log.info("console sign-in: user %r in project %r", username[:64], project[:64])
    return response


@router.post("/logout")
def logout() -> Response:
    return _to_login(clear=True)


@router.get("")
def root() -> Response:
    return RedirectResponse("/console/", status_code=307)


@router.get("/")
def fleet_view(request: Request) -> Response:
    who = _signed_in(request)
    if isinstance(who, Response):
        return who
    data = pages.fleet_page(_runtime(request), who[1])
    return _render(request, "fleet.html", _chrome(*who, section="fleet") | data)


@router.get("/instances/{instance_id}")
def instance_view(request: Request, instance_id: str) -> Response:
    who = _signed_in(request)
    if isinstance(who, Response):
        return who
    try:
        data = pages.instance_page(_runtime(request), who[1], instance_id)
    except service.NotFound:
        return _error(request, who, 404, "Instance not found",
                      "There is no such instance in the projects you can see.")
    return _render(request, "instance.html", _chrome(*who, section="fleet") | data)


def _admin_only(request: Request, who: tuple[ConsoleUser, Any]) -> Response | None:
    if who[1].is_admin:
        return None
    return _error(request, who, 403, "Administrators only",
                  "Fleet migrations are run by the cloud administrator; sign in with the admin role to see them.")


@router.get("/migrations")
def migrations_view(request: Request) -> Response:
    who = _signed_in(request)
    if isinstance(who, Response):
        return who
    refused = _admin_only(request, who)
    if refused is not None:
        return refused
    return _render(request, "migrations.html",
                   _chrome(*who, section="migrations") | pages.migrations_page(_runtime(request)))


@router.get("/migrations/{migration_id}")
def migration_view(request: Request, migration_id: str) -> Response:
    who = _signed_in(request)
    if isinstance(who, Response):
        return who
    refused = _admin_only(request, who)
    if refused is not None:
        return refused
    try:
        data = pages.migration_page(_runtime(request), migration_id)
    except service.NotFound:
        return _error(request, who, 404, "Migration not found", "There is no fleet migration with that id.")
    return _render(request, "migration.html", _chrome(*who, section="migrations") | data)
