"""One text form for timestamps, shared by both read paths and by cursors; today's date."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, bindparam


def iso_datetime(value: datetime) -> str:
    """ISO 8601 exactly as PostgreSQL's `to_json(timestamptz)` prints it (session in UTC).

    That is Python's `isoformat()` with the fraction's trailing zeros dropped
    (`…T10:00:00.12+00:00`, never `.120000`): the compiled read path lets PostgreSQL
    print timestamps (its own C routine, 3 ms of a 9 ms page when done by `to_char`),
    and the field-by-field path must print the same bytes.
    """
    text = value.isoformat()
    if not value.microsecond:
        return text
    # YYYY-MM-DDTHH:MM:SS.ffffff is 26 characters; an offset (if any) follows.
    return text[:26].rstrip("0") + text[26:]


# Today's date in SQL expressions (TaxExemptionCertificate.isValid), one bind parameter:
# the dataloader path binds the app's date.today() each time a statement runs; the compiled
# builder puts its per-request date parameter in its place (Builder.field), so a cached
# statement never keeps yesterday's date.
TODAY = bindparam("today", type_=Date, callable_=date.today)
