"""The sidebar's routes, under ``/plugins/wecom/sidebar/{account_id}``:

- ``GET`` (the chat-toolbar page, 聊天工具栏): with WeCom's ``?code=…&state=…``
  the code is exchanged (``auth/getuserinfo``) for the member's userid, a
  session opened (``sessions``) and the page served; without a code the
  session cookie must be live.  Otherwise a 401 / 403 page and nothing else;
- ``GET …/config?url=`` the ``wx.config`` / ``wx.agentConfig`` parameters signed
  for that page address (its fragment dropped), with the tickets every process
  shares (``tickets.SharedTickets``);
- ``GET …/customer?external_userid=`` the panel of the customer whose chat is
  open: only a customer of the account's tenant whom this member follows;
  ``POST …/customer`` its edit form (fields and tags, through ``Host.edit_customer``);
- ``POST …/touches/{id}/sent`` and ``…/skip``: the member's tap on a touch awaiting them;
- ``POST …/sign-out`` (CSRF) deletes the session and clears its cookie;
- ``GET …/sidebar.js`` the page's script.
"""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sopflow_sdk import FatalError, Host, InboundRequest, InboundResponse, RouteSpec, SopflowError

from sopflow_wecom.channel import account_channel
from sopflow_wecom.events import CHANNEL
from sopflow_wecom.oauth import INVALID_CODE, member_from_code
from sopflow_wecom.sidebar import page, sessions
from sopflow_wecom.sidebar.tickets import SharedTickets

BASE = "sidebar/{account_id:int}"
logger = logging.getLogger(__name__)


def _html(status: int, body: str, headers: dict[str, str] | None = None) -> InboundResponse:
    return InboundResponse(status, body, "text/html; charset=utf-8", {**page.HEADERS, **(headers or {})})


def _refused(status: int, message: str) -> InboundResponse:
    return _html(status, page.refusal(message))


def _account(request: InboundRequest, host: Host) -> Any:
    try:
        account = host.channel_account(int(request.path_params.get("account_id", "")))
    except ValueError:
        return None
    return account if account is not None and account.channel == CHANNEL else None


def _https(request: InboundRequest) -> bool:
    # behind a TLS-terminating proxy the scheme arrives in X-Forwarded-Proto
    return request.headers.get("x-forwarded-proto", "").lower() == "https"


NO_SESSION = (
    "Open the sidebar from a customer's chat in WeCom; your session has ended or was never opened. "
    "请在企业微信的客户聊天中打开侧边栏。"
)


def sidebar_page(request: InboundRequest, host: Host) -> InboundResponse:
    account = _account(request, host)
    if account is None:
        return _refused(404, "No WeCom channel account here. 没有这个企业微信账号。")
    base = sessions.cookie_path(account.id)
    code = request.query.get("code")
    if code is None:
        user = sessions.find_user(host, account, request.headers.get("cookie"))
        if user is None:
            return _refused(401, NO_SESSION)
        return _html(200, page.shell(base, user.csrf_token, request.query.get("notice")))
    channel = account_channel(account)
    try:
        userid = member_from_code(channel.client, code)
    except SopflowError as exc:
        if getattr(exc, "errcode", None) == INVALID_CODE:  # used, expired, or issued by another corp
            return _refused(
                403, "WeCom did not confirm who you are: reopen the sidebar. 身份校验失败，请重新打开侧边栏。"
            )
        if isinstance(exc, FatalError):  # an outsider's openid, or no code at all
            return _refused(403, "This WeCom sign-in is not a member of the corp. 该身份不是本企业成员。")
        return _refused(502, f"WeCom could not be asked who you are: {exc.user_message}")
    try:
        token, user = sessions.open_session(host, account, userid)
    except FatalError:  # the plugin is off for the account's tenant
        return _refused(403, "WeCom is not enabled for this workspace in sopflow. sopflow 未启用企业微信。")
    cookie = sessions.set_cookie(token, account.id, _https(request))
    return _html(200, page.shell(base, user.csrf_token), {"Set-Cookie": cookie})


def _json(status: int, body: Any) -> InboundResponse:
    return InboundResponse(status, json.dumps(body, ensure_ascii=False), "application/json", page.HEADERS)


def signed_config(request: InboundRequest, host: Host) -> InboundResponse:
    account = _account(request, host)
    user = account and sessions.find_user(host, account, request.headers.get("cookie"))
    if not user:
        return _json(401, {"detail": NO_SESSION})
    url = request.query.get("url", "")
    target = urlsplit(url)
    # only this sidebar's own page is signed, so the route is no signing service for others
    if (
        target.scheme not in ("http", "https")
        or target.netloc != request.headers.get("host", "")
        or target.path != sessions.cookie_path(account.id)
    ):
        return _json(422, {"detail": "url: give this sidebar page's own address (location.href)"})
    channel = account_channel(account)
    tickets = SharedTickets(host, account.tenant_id, channel.client, channel.agent_id)
    try:
        return _json(200, tickets.configs(url))
    except SopflowError as exc:
        return _json(503, {"detail": exc.user_message})


def _followed(host: Host, account: Any, user: Any, external_userid: str) -> tuple[Any, Any, Any]:
    """The overview and the customer, or the refusal: only a customer of the account's
    tenant whom this member follows (WeCom's follow relation, as sopflow holds it)."""
    overview = external_userid and host.customer_overview(account.tenant_id, CHANNEL, external_userid)
    customer = overview and host.customer(account.tenant_id, overview["customer_id"])
    if not customer:
        return None, None, _refused(404, "This customer is not in sopflow yet. sopflow 中还没有这个客户。")
    followers = {i.staff_external_id for i in customer.identities if i.channel == CHANNEL}
    if user.userid not in followers:
        return None, None, _refused(403, "You do not follow this customer. 你不是该客户的跟进人。")
    return overview, customer, None


def customer(request: InboundRequest, host: Host) -> InboundResponse:
    return customer_save(request, host) if request.method == "POST" else customer_panel(request, host)


def customer_panel(request: InboundRequest, host: Host) -> InboundResponse:
    account = _account(request, host)
    user = account and sessions.find_user(host, account, request.headers.get("cookie"))
    if not user:
        return _refused(401, NO_SESSION)
    external_userid = request.query.get("external_userid", "")
    overview, customer, refused = _followed(host, account, user, external_userid)
    if refused:
        return refused
    form = {
        "base": sessions.cookie_path(account.id),
        "csrf": user.csrf_token,
        "external_userid": external_userid,
    }
    return _html(200, page.panel(customer, overview, host.fields(account.tenant_id), form))


def customer_save(request: InboundRequest, host: Host) -> InboundResponse:
    """The member saved the edit form: the fields' text and the tags typed go to
    ``Host.edit_customer`` (validated and audited as the console's edits, the member
    the actor); a problem shows the panel again with it, nothing changed."""
    account = _account(request, host)
    user = account and sessions.find_user(host, account, request.headers.get("cookie"))
    if not user:
        return _refused(401, NO_SESSION)
    form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    if not sessions.same_token(form.get("_csrf"), user.csrf_token):
        return _refused(403, "This form is out of date: reload the sidebar. 页面已过期，请刷新侧边栏。")
    external_userid = form.get("external_userid", "")
    overview, customer, refused = _followed(host, account, user, external_userid)
    if refused:
        return refused
    fields = {k.removeprefix("field."): v for k, v in form.items() if k.startswith("field.")}
    wanted = [t.strip() for t in form.get("tags", "").split(",") if t.strip()]
    add = [t for t in wanted if t not in customer.tags]
    remove = [t for t in customer.tags if t not in wanted] if "tags" in form else []
    problems = host.edit_customer(
        account.tenant_id, CHANNEL, external_userid, fields, add, remove, staff=user.actor
    )
    if problems:
        base = {
            "base": sessions.cookie_path(account.id),
            "csrf": user.csrf_token,
            "external_userid": external_userid,
        }
        body = page.panel(customer, overview, host.fields(account.tenant_id), base, problems, form)
        return _html(422, page.edited(body))
    logger.info("sidebar_customer_saved", extra={"actor": user.actor, "customer_id": customer.id})
    location = f"{sessions.cookie_path(account.id)}?notice=saved"
    return InboundResponse(303, "", "text/plain", {**page.HEADERS, "Location": location})


def touch_sent(request: InboundRequest, host: Host) -> InboundResponse:
    """The member tapped "sent" on a touch awaiting them: the engine asks WeCom now
    (its confirmation path), so the touch moves once, and only on WeCom's word (a
    manual touch: on the member's)."""
    return _tap(request, host, "sent")


def touch_skip(request: InboundRequest, host: Host) -> InboundResponse:
    """The member tapped "skip": the engine cancels the send (a WeCom mass-send task
    through the channel's ``cancel``) and ends the touch ``skipped_by_staff``, once."""
    return _tap(request, host, "skip")


def _tap(request: InboundRequest, host: Host, tap: str) -> InboundResponse:
    account = _account(request, host)
    user = account and sessions.find_user(host, account, request.headers.get("cookie"))
    if not user:
        return _refused(401, NO_SESSION)
    form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
    if not sessions.same_token(form.get("_csrf"), user.csrf_token):
        return _refused(403, "This form is out of date: reload the sidebar. 页面已过期，请刷新侧边栏。")
    overview, _customer, refused = _followed(host, account, user, form.get("external_userid", ""))
    if refused:
        return refused
    touch_id = int(request.path_params["touch_id"])
    due = {t["id"]: t["status"] for t in overview["touches"]}
    # a touch already final (a second tap, a reload) is no longer due: nothing to do
    status = (
        host.confirm_touches(account.tenant_id, [touch_id], tap=tap, staff=user.actor).get(touch_id)
        if touch_id in due
        else None
    )
    logger.info(f"sidebar_touch_{tap}", extra={"actor": user.actor, "touch_id": touch_id, "status": status})
    if tap == "skip":
        notice = {None: "done", "skipped": "skipped"}.get(status, "not_skipped")
    else:
        notice = "pending" if status == "pending" else "sent"
    location = f"{sessions.cookie_path(account.id)}?notice={notice}"
    return InboundResponse(303, "", "text/plain", {**page.HEADERS, "Location": location})


def sign_out(request: InboundRequest, host: Host) -> InboundResponse:
    """Sign out (POST, CSRF): the session is deleted and the cookie cleared."""
    account = _account(request, host)
    user = account and sessions.find_user(host, account, request.headers.get("cookie"))
    if not user:
        return _refused(401, NO_SESSION)
    form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
    if not sessions.same_token(form.get("_csrf"), user.csrf_token):
        return _refused(403, "This form is out of date: reload the sidebar. 页面已过期，请刷新侧边栏。")
    sessions.close_session(host, account, request.headers.get("cookie"))
    logger.info("sidebar_signed_out", extra={"actor": user.actor})
    cookie = sessions.clear_cookie(account.id, _https(request))
    return _html(200, page.signed_out(), {"Set-Cookie": cookie})


def script(request: InboundRequest, host: Host) -> InboundResponse:
    body = (files("sopflow_wecom.sidebar") / "static" / "sidebar.js").read_text(encoding="utf-8")
    return InboundResponse(200, body, "text/javascript; charset=utf-8", {"Cache-Control": "no-cache"})


def route_specs() -> list[RouteSpec]:
    return [
        RouteSpec(
            path=BASE,
            handler=sidebar_page,
            methods=("GET",),
            description="The WeCom chat sidebar page (聊天工具栏): opened through WeCom's OAuth",
        ),
        RouteSpec(
            path=f"{BASE}/config",
            handler=signed_config,
            methods=("GET",),
            description="The sidebar's signed wx.config and wx.agentConfig parameters (sidebar session)",
        ),
        RouteSpec(
            path=f"{BASE}/customer",
            handler=customer,
            methods=("GET", "POST"),
            description="The panel of the customer whose chat is open (sidebar session); "
            "POST saves its fields and tags, audited (CSRF)",
        ),
        RouteSpec(
            path=f"{BASE}/touches/{{touch_id:int}}/sent",
            handler=touch_sent,
            methods=("POST",),
            description="The member sent a touch awaiting them from the chat (sidebar session, CSRF)",
        ),
        RouteSpec(
            path=f"{BASE}/touches/{{touch_id:int}}/skip",
            handler=touch_skip,
            methods=("POST",),
            description="The member skipped a touch awaiting them: it is not sent (sidebar session, CSRF)",
        ),
        RouteSpec(
            path=f"{BASE}/sign-out",
            handler=sign_out,
            methods=("POST",),
            description="Sign out of the sidebar: the session is deleted (sidebar session, CSRF)",
        ),
        RouteSpec(
            path=f"{BASE}/sidebar.js",
            handler=script,
            methods=("GET",),
            description="The sidebar page's script",
        ),
    ]
