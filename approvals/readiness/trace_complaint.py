"""What a complaint about one change says: the record, what someone noticed changed, and roughly when.

It says only what a customer or a colleague would: never the change's id, its values or who approved
it. The time is a phrase as a person says it ("yesterday afternoon", "on Tuesday evening", "about 3
weeks ago"), in the time zone of whoever will look for it.
"""

from datetime import datetime, timedelta, tzinfo

from records.catalogue import RECORD_TYPES, Sensitivity

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# What a customer sees of their own record; the rest only a colleague would notice.
NOTICED_BY_CUSTOMERS = {Sensitivity.PII, Sensitivity.FINANCIAL}


def _part_of_day(hour: int) -> str:
    if hour < 5 or hour >= 22:
        return "night"
    if hour < 12:
        return "morning"
    return "afternoon" if hour < 17 else "evening"


def _on_day(day: str, hour: int) -> str:
    """A part of a named day: "yesterday afternoon", "on Tuesday evening", "early on Tuesday morning"."""
    part = _part_of_day(hour)
    if part != "night":
        return f"{day} {part}"
    return f"early {day} morning" if hour < 5 else f"late {day} evening"


def when_phrase(moment: datetime, *, now: datetime, zone: tzinfo) -> str:
    """Roughly when `moment` was, as a person in `zone` would say it at `now`."""
    if now - moment < timedelta(hours=1):
        return "in the last hour"
    local = moment.astimezone(zone)
    days = (now.astimezone(zone).date() - local.date()).days
    if days <= 0:
        return _on_day("this", local.hour)
    if days == 1:
        return "last night" if local.hour >= 22 else _on_day("yesterday", local.hour)
    if days < 7:
        return _on_day(f"on {WEEKDAYS[local.weekday()]}", local.hour)
    if days < 14:
        return "about a week ago"
    if days < 60:
        return f"about {round(days / 7)} weeks ago"
    return f"about {round(days / 30)} months ago"


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def complaint_text(*, record_type: str, record_id: str, fields: list[str], when: str) -> str:
    """The complaint about `fields` of one record changing `when`, in the words of who would notice."""
    spec = RECORD_TYPES[record_type]
    specs = [spec.field(name) for name in fields]
    what = _listed([field.label for field in specs])
    if any(field.sensitivity in NOTICED_BY_CUSTOMERS for field in specs):
        if record_type == "customer":
            return f"Customer {record_id} says their {what} changed {when}."
        return f"The customer on {spec.label.lower()} {record_id} says its {what} changed {when}."
    return f"A colleague says the {what} of {spec.label.lower()} {record_id} changed {when}."
