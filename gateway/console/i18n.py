"""The console's words: Chinese (zh-CN, the default) and English.

The pages are few and their words fixed, so they are a table here, which a test keeps
complete in both languages; report content (class names, roads, units) comes in Chinese
from the code profile and the geo layers, with English beside it where those have it.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")

WORDS: dict[str, dict[Language, str]] = {
    "title": {"zh-CN": "城管通 受理台", "en": "Urban management console"},
    "login": {"zh-CN": "登录", "en": "Log in"},
    "logout": {"zh-CN": "退出", "en": "Log out"},
    "name": {"zh-CN": "账号", "en": "Account"},
    "password": {"zh-CN": "密码", "en": "Password"},
    "login_failed": {"zh-CN": "账号或密码错误", "en": "Wrong account or password"},
    "login_needed": {"zh-CN": "请先登录", "en": "Please log in"},
    "new_password": {"zh-CN": "新密码", "en": "New password"},
    "new_password_again": {"zh-CN": "再次输入新密码", "en": "New password again"},
    "change_password": {"zh-CN": "修改密码", "en": "Change password"},
    "must_change": {
        "zh-CN": "这是一次性密码,请设置新密码(至少 12 个字符)",
        "en": "This is a one-time password: choose a new one (12 characters or more)",
    },
    "passwords_differ": {"zh-CN": "两次输入不一致", "en": "The two entries differ"},
    "reports": {"zh-CN": "受理台", "en": "Reports"},
    "map": {"zh-CN": "地图", "en": "Map"},
    "fleet": {"zh-CN": "设备", "en": "Fleet"},
    "pipeline": {"zh-CN": "流水线", "en": "Pipeline"},
    "case_no": {"zh-CN": "案件编号", "en": "Case number"},
    "class": {"zh-CN": "大类 / 小类", "en": "Class"},
    "description": {"zh-CN": "问题描述", "en": "Description"},
    "inspector": {"zh-CN": "监督员", "en": "Inspector"},
    "segment": {"zh-CN": "责任路段", "en": "Road segment"},
    "units": {"zh-CN": "责任单位", "en": "Responsible units"},
    "district": {"zh-CN": "区", "en": "District"},
    "grid": {"zh-CN": "单元网格", "en": "Unit grid"},
    "received": {"zh-CN": "接收时间", "en": "Received"},
    "window": {"zh-CN": "受理时段", "en": "Window"},
    "coverage": {"zh-CN": "覆盖范围", "en": "Coverage"},
    "status": {"zh-CN": "状态", "en": "Status"},
    "registered": {"zh-CN": "已立案", "en": "Registered"},
    "inside": {"zh-CN": "内", "en": "inside"},
    "outside": {"zh-CN": "外", "en": "outside"},
    "all": {"zh-CN": "全部", "en": "all"},
    "day": {"zh-CN": "日期", "en": "Day"},
    "filter": {"zh-CN": "筛选", "en": "Filter"},
    "older": {"zh-CN": "更早", "en": "Older"},
    "newest": {"zh-CN": "最新", "en": "Newest"},
    "no_reports": {"zh-CN": "没有符合条件的案件", "en": "No report matches"},
    "photos": {"zh-CN": "照片", "en": "Photos"},
    "voice": {"zh-CN": "语音", "en": "Voice note"},
    "place": {"zh-CN": "位置", "en": "Place"},
    "evidence": {"zh-CN": "证据原件", "en": "Evidence (originals)"},
    "sha256": {"zh-CN": "SHA-256", "en": "SHA-256"},
    "size": {"zh-CN": "大小", "en": "Size"},
    "download": {"zh-CN": "下载原件", "en": "Download original"},
    "no_position": {"zh-CN": "无定位", "en": "No position"},
    "device": {"zh-CN": "终端", "en": "Terminal"},
    "unit": {"zh-CN": "单位", "en": "Unit"},
    "online": {"zh-CN": "在线", "en": "online"},
    "offline": {"zh-CN": "离线", "en": "offline"},
    "unknown": {"zh-CN": "未知", "en": "unknown"},
    "last_seen": {"zh-CN": "最后上报", "en": "Last seen"},
    "battery": {"zh-CN": "电量", "en": "Battery"},
    "firmware": {"zh-CN": "固件", "en": "Firmware"},
    "signal": {"zh-CN": "信号", "en": "Signal"},
    "uploading": {"zh-CN": "上传中", "en": "Uploading"},
    "rejected": {"zh-CN": "被拒", "en": "Rejected"},
    "last_fix": {"zh-CN": "最后定位", "en": "Last fix"},
    "account_status": {"zh-CN": "准入", "en": "Access"},
    "active": {"zh-CN": "正常", "en": "active"},
    "suspended": {"zh-CN": "暂停", "en": "suspended"},
    "revoked": {"zh-CN": "吊销", "en": "revoked"},
    "unregistered": {"zh-CN": "未登记", "en": "unregistered"},
    "sink": {"zh-CN": "去向", "en": "Sink"},
    "pending": {"zh-CN": "待投递", "en": "Pending"},
    "oldest_s": {"zh-CN": "最久等待 (秒)", "en": "Oldest (s)"},
    "dead": {"zh-CN": "死信", "en": "Dead letters"},
    "report_id": {"zh-CN": "报告 ID", "en": "Report id"},
    "attempts": {"zh-CN": "尝试次数", "en": "Attempts"},
    "error": {"zh-CN": "原因", "en": "Reason"},
    "retry": {"zh-CN": "重新投递", "en": "Retry"},
    "retry_confirm": {
        "zh-CN": "确认重新投递这封死信?",
        "en": "Retry this dead letter?",
    },
    "retried": {"zh-CN": "已重新排队", "en": "Queued again"},
    "no_dead_letters": {"zh-CN": "没有死信", "en": "No dead letters"},
    "forbidden": {"zh-CN": "无权限", "en": "Not allowed"},
    "not_found": {"zh-CN": "没有这个案件", "en": "No such case"},
    "language": {"zh-CN": "English", "en": "中文"},
    "live": {"zh-CN": "实时更新", "en": "Live"},
    "role": {"zh-CN": "角色", "en": "Role"},
    "viewer": {"zh-CN": "查看员", "en": "viewer"},
    "operator": {"zh-CN": "受理员", "en": "operator"},
    "technician": {"zh-CN": "设备技术员", "en": "technician"},
    "today_track": {"zh-CN": "今日轨迹", "en": "Today's track"},
    "track_hint": {
        "zh-CN": "点击地图上的终端或表格中的一行显示其今日轨迹",
        "en": "click a terminal on the map or a row of the table to draw its track of today",
    },
    "component": {"zh-CN": "部件", "en": "component"},
    "event": {"zh-CN": "事件", "en": "event"},
}


def words(language: Language) -> dict[str, str]:
    """Every word of the console in one language."""
    return {key: by_language[language] for key, by_language in WORDS.items()}
