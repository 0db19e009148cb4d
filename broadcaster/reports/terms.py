"""The words and status groups every report uses (what counts where, and its Vietnamese label)."""

from __future__ import annotations

from ..deliveries import DeliveryStatus
from ..models import Channel, Metric

LATE_AFTER_S = 60.0
CANCELLED = DeliveryStatus.CANCELLED.value  # an SMS row `sms cancel` stopped before sending
KNOWN_STATUSES = sorted({s.value for s in DeliveryStatus} | {CANCELLED})
PEOPLE_SMS = {DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value}

# Channel-table rows: loudspeaker deliveries split by the kind of bulletin that carried them.
SCHEDULED, ANNOUNCEMENT, SMS_ROW = "loudspeaker", "announcement", "sms"
CHANNEL_ROWS = (SCHEDULED, ANNOUNCEMENT, SMS_ROW)
OUTSIDE_PLAN = "outside_plan"

# Statuses that did not achieve anything, each in its own column (by the string value, so a status
# added to DeliveryStatus later is counted where it belongs or, if unknown, nowhere but the log).
STATUS_COLUMNS = {
    DeliveryStatus.PENDING.value: "in_progress",
    DeliveryStatus.SENDING.value: "in_progress",
    DeliveryStatus.PLAYING.value: "in_progress",
    CANCELLED: "cancelled",
    DeliveryStatus.FAILED.value: "failed",
    DeliveryStatus.MISSED.value: "missed",
    DeliveryStatus.INTERRUPTED.value: "interrupted",
    DeliveryStatus.UNCERTAIN.value: "uncertain",
    DeliveryStatus.SKIPPED.value: "skipped",
}

DONE, ON_TRACK, BEHIND = "done", "on_track", "behind"
STATUS_LABELS = {DONE: ("đạt", "done"), ON_TRACK: ("đúng tiến độ", "on track"), BEHIND: ("chậm", "behind")}
DELIVERY_STATUS_LABELS = {
    DeliveryStatus.PENDING.value: ("chờ gửi", "pending"),
    DeliveryStatus.SENDING.value: ("đang gửi", "sending"),
    DeliveryStatus.UNCERTAIN.value: ("không rõ kết quả", "uncertain"),
    DeliveryStatus.PLAYING.value: ("đang phát", "playing"),
    DeliveryStatus.PLAYED.value: ("đã phát", "played"),
    DeliveryStatus.SENT.value: ("đã gửi", "sent"),
    DeliveryStatus.DELIVERED.value: ("đã đến", "delivered"),
    DeliveryStatus.UNDELIVERED.value: ("không đến", "undelivered"),
    DeliveryStatus.FAILED.value: ("lỗi", "failed"),
    DeliveryStatus.MISSED.value: ("bị lỡ", "missed"),
    DeliveryStatus.INTERRUPTED.value: ("bị ngắt", "interrupted"),
    DeliveryStatus.SKIPPED.value: ("bỏ qua", "skipped"),
    CANCELLED: ("đã hủy", "cancelled"),
}
CHANNEL_LABELS = {
    Channel.LOUDSPEAKER.value: ("loa truyền thanh", "loudspeaker"),
    Channel.SMS.value: ("tin nhắn SMS", "SMS"),
    Channel.ANY.value: ("mọi kênh", "any channel"),
}
CHANNEL_ROW_LABELS = {
    SCHEDULED: ("Loa: bản tin theo lịch", "Loudspeaker: scheduled bulletins"),
    ANNOUNCEMENT: ("Loa: thông báo", "Loudspeaker: announcements"),
    SMS_ROW: ("Tin nhắn SMS", "SMS"),
    OUTSIDE_PLAN: ("Ngoài kế hoạch (không tính vào tổng)", "Outside the plan (in no total)"),
}
# What a target measures, in the report's words (airtime targets count content airtime).
METRIC_LABELS = {
    Metric.BROADCASTS.value: ("lượt phát", "broadcasts"),
    Metric.AIRTIME_MINUTES.value: ("phút nội dung", "content minutes"),
    Metric.SMS_SENT.value: ("tin nhắn đã gửi", "SMS sent"),
    Metric.SMS_DELIVERED.value: ("tin nhắn đã đến", "SMS delivered"),
    Metric.PEOPLE_REACHED.value: ("người được tiếp cận", "people reached"),
}
WHOLE_PLAN_LABEL = ("toàn kế hoạch", "whole plan")

