"""Signing in (an API key exchanged for a session cookie) and out."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from sopflow.console.render import page
from sopflow.console.sessions import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    cookie_options,
    new_sign_in_token,
    same_token,
)
from sopflow.engine.customers.console_sessions import sign_in, sign_out
from sopflow.errors import InvalidInput

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _form_page(request: Request, status: int = 200, errors: dict[str, str] | None = None) -> Response[str]:
    token = new_sign_in_token()
    response = page(request, "sign_in.html", status=status, sign_in_token=token, errors=errors or {})
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=3600, **cookie_options(request))
    return response


@get("/sign-in", sync_to_thread=False)
def sign_in_page(request: Request) -> Response[str]:
    return _form_page(request)


@post("/sign-in", sync_to_thread=True)
def sign_in_post(request: Request, data: Form) -> Response[Any]:
    if not same_token(data.get("_sign_in"), request.cookies.get(SIGN_IN_COOKIE)):
        return page(request, "message.html", status=403, message_key="csrf_refused")
    app = request.app.state.sopflow
    minutes = app.settings.console_session_minutes
    try:
        with app.tx() as s:
            token, _ = sign_in(s, data.get("api_key", ""), app.now(), minutes)
    except InvalidInput as exc:
        return _form_page(request, 422, {e["field"]: e["message"] for e in exc.errors})
    response: Response[Any] = Redirect("/console/board", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=minutes * 60, **cookie_options(request))
    response.delete_cookie(SIGN_IN_COOKIE, path="/console")
    return response


@post("/sign-out", sync_to_thread=True)
def sign_out_post(request: Request) -> Response[Any]:
    app = request.app.state.sopflow
    with app.tx() as s:
        sign_out(s, request.cookies.get(SESSION_COOKIE), app.now())
    response: Response[Any] = Redirect("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response
