"""What the vendor's document fixes: paths, groupings, filters, states and report counters.

The sandbox keeps its own copy of these (it stands for the vendor, not for us); a test checks that
the two agree.
"""

API_PREFIX = "/api/ms/external"
MAX_PAGE_SIZE = 10_000
REPORT_DATA_TYPES = ("period", "agent", "department", "channel", "tag")
# The filters each endpoint documents, by parameter name.
REPORT_FILTERS = ("agents", "departments", "states", "types", "tags")
HISTORY_FILTERS = ("agents", "departments", "states", "types", "active")
ONGOING_FILTERS = ("agents", "departments", "states", "types")
CHANNELS = ("PHONE", "PHONE_CONF", "WHATSAPP", "FACEBOOK", "EMAIL", "SMS", "TELEGRAM", "TEXT", "MELI_QST", "MELI_MSG")
FINAL_STATES = ("ENDED", "DISCARDED", "MISSED", "EXPIRED", "CANCELED", "UNAVAILABLE")
ONGOING_STATES = ("NOT_ANSWERED", "RINGING", "TALKING", "POSTPONED", "PENDING")
# The queue state: the document's ongoing section spells it NOT_ANSWER; we have seen NOT_ANSWERED too.
QUEUE_STATES = ("NOT_ANSWERED", "NOT_ANSWER")
# Report counters that add up across the lines of one report.
REPORT_ADDITIVE = ("backlog", "received", "made", "rang", "answered", "ended", "not_answered", "pending",
                   "postponed", "discarded", "missed", "expired", "remainder")
# Message authors. The document never shows a message: each kind is known under the names an API may give it.
AUTHOR_TYPES = {
    "CUSTOMER": ("CUSTOMER", "CLIENT", "CONTACT"),
    "AGENT": ("AGENT", "OPERATOR", "ATTENDANT"),
    "BOT": ("BOT", "CHATBOT"),
    "SYSTEM": ("SYSTEM",),
}
