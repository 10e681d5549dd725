"""The console's words in English and Chinese: one table, ``t[key]`` in templates.

A language is picked by ``?lang=`` (remembered in a cookie), else the browser's
``Accept-Language``; tests/test_console.py checks every label the templates use has both.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("en", "zh")

LABELS: dict[str, tuple[str, str]] = {
    "console": ("sopflow console", "sopflow 运营台"),
    "sign_in": ("Sign in", "登录"),
    "sign_out": ("Sign out", "退出"),
    "api_key": ("API key", "API 密钥"),
    "api_key_help": (
        "Paste a read or admin key; it is exchanged for a session and never kept in the page.",
        "粘贴只读或管理员密钥；密钥只用于换取会话，不会保存在页面中。",
    ),
    "signed_in_as": ("Signed in with key", "当前密钥"),
    "read_only": ("read only", "只读"),
    "board": ("Board", "商机看板"),
    "customers": ("Customers", "客户"),
    "sops": ("SOPs", "SOP"),
    "channels": ("Channels", "渠道"),
    "journey": ("Journey", "旅程"),
    "no_journeys": ("No journeys yet: create one with POST /api/v1/journeys.", "还没有旅程：请先创建。"),
    "filter": ("Filter", "筛选"),
    "tag": ("Tag", "标签"),
    "owner": ("Owner", "负责人"),
    "text": ("Name contains", "名称包含"),
    "anyone": ("anyone", "全部"),
    "apply": ("Apply", "应用"),
    "more": ("More", "更多"),
    "move_to": ("Move to", "移动到"),
    "move": ("Move", "移动"),
    "moved": ("Moved", "已移动"),
    "move_help": (
        "Drag a card to another column, or focus it and press ← / →.",
        "拖动卡片到其他列，或选中卡片后按 ← / → 键。",
    ),
    "last_activity": ("Last activity", "最近动态"),
    "none": ("none", "无"),
    "fields": ("Fields", "字段"),
    "save": ("Save", "保存"),
    "saved": ("Saved", "已保存"),
    "not_saved": ("Not saved: fix the fields marked below.", "未保存：请修改下面标出的字段。"),
    "display_name": ("Name", "名称"),
    "tags": ("Tags", "标签"),
    "tags_help": ("Comma-separated", "以逗号分隔"),
    "identities": ("Identities", "身份"),
    "stage_history": ("Stage history", "阶段历史"),
    "entered": ("Entered", "进入"),
    "left": ("Left", "离开"),
    "cause": ("Cause", "原因"),
    "enrollments": ("Enrolments", "SOP 参与"),
    "touches": ("Touches", "触达"),
    "status": ("Status", "状态"),
    "due": ("Due", "计划时间"),
    "timeline": ("Event timeline", "事件时间线"),
    "by": ("by", "操作者"),
    "end": ("End", "结束"),
    "end_enrollment": ("End enrolment", "手动结束"),
    "flow_to": ("Then enrol in SOP (id)", "然后进入 SOP（编号）"),
    "tags_add": ("Add tags", "添加标签"),
    "name": ("Name", "名称"),
    "kind": ("Kind", "类型"),
    "data": ("Data", "数据"),
    "edit": ("Edit", "编辑"),
    "start": ("Start", "启动"),
    "stop": ("Stop", "停止"),
    "step": ("Step", "步骤"),
    "targeted": ("Targeted", "目标"),
    "sent": ("Sent", "已发送"),
    "failed": ("Failed", "失败"),
    "pending": ("Pending", "待发送"),
    "deferred": ("Deferred", "延后"),
    "replied": ("Replied", "已回复"),
    "conversion": ("Conversion", "转化"),
    "converted": ("Converted", "已转化"),
    "within_days": ("within {days} days", "{days} 天内"),
    "per_day": ("Sends and conversions per day", "每日发送与转化"),
    "customer": ("Customer", "客户"),
    "next_touch": ("Next touch", "下次触达"),
    "definition": ("Definition (JSON)", "定义（JSON）"),
    "preview": ("Check and preview audience", "校验并预览人群"),
    "audience_count": ("customers match the target now", "位客户当前符合目标"),
    "valid": ("The definition is valid.", "定义有效。"),
    "live_codes": ("Live codes", "渠道活码"),
    "accounts": ("Channel accounts", "渠道账号"),
    "health": ("Health", "健康"),
    "health_idle": (
        "installed and enabled; nothing sent in the last 24 h",
        "已安装并启用；过去 24 小时没有发送",
    ),
    "health_counts": (
        "last 24 h: {sent} sent, {failed} failed or for review, {retrying} retrying",
        "过去 24 小时：已发送 {sent}，失败或待复核 {failed}，重试中 {retrying}",
    ),
    "health_last_error": ("last error", "最近错误"),
    "plugin_pages": ("Plugins", "插件"),
    "language": ("中文", "English"),
    "forbidden": (
        "This key can only read; sign in with an admin key to change.",
        "此密钥只读；请用管理员密钥登录后修改。",
    ),
    "csrf_refused": ("The form expired; reload the page and try again.", "表单已失效，请刷新页面后重试。"),
    "session_needed": ("Sign in first.", "请先登录。"),
    "not_found": ("Not found", "未找到"),
}


def labels_for(lang: str) -> Mapping[str, str]:
    """``{key: text}`` in ``lang`` (``en`` or ``zh``)."""
    index = LANGUAGES.index(lang)
    return {key: pair[index] for key, pair in LABELS.items()}


def pick_language(asked: str | None, remembered: str | None, accept_language: str) -> str:
    """``?lang=`` first, then the cookie, then the browser's first preference."""
    for choice in (asked, remembered):
        if choice in LANGUAGES:
            return choice
    return "zh" if accept_language.lower().startswith("zh") else "en"
