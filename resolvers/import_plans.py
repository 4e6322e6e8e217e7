"""Import rows, planned: each validated like customerCreate/Update before anything is written.

The write side's own checks (resolvers/validate.py: names, email, phone in the row's
country, ISO codes; custom field types through `custom_field_mutations.parse`; card numbers
refused and masked) turn a read row into a `Plan` (what the customer, its default address
and custom fields become) or a `Rejected` (line, column, code, message).
resolvers/import_writer.py writes the plans, batch by batch (resolvers/import_rows.py drives
the import).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pycountry

from models.enums import CustomFieldType, MarketingState
from resolvers import tags as tag_rules
from resolvers import validate
from resolvers.custom_field_mutations import parse as parse_custom
from resolvers.errors import UserErrorCode
from resolvers.imports import FALSE, TRUE, ColumnMap, Row, boolean, kind
from resolvers.mutations import Refused

ADDRESS_COLUMNS = ("company", "line1", "line2", "city", "region", "postal_code", "country", "phone")
CONSENT_CHANNELS = ("email", "sms")  # the `{channel}_marketing` fields
# A consent cell: yes (subscribe), no (unsubscribe one who is subscribed or pending), or a
# state by name (our own export's cells), set as it is.
Consent = bool | MarketingState


@dataclass
class Rejected:
    line: int
    raw: list[str]
    column: str | None
    code: UserErrorCode
    message: str


@dataclass
class Plan:
    """A validated row: what the customer, its default address and custom fields become."""

    line: int
    raw: list[str]
    key: str | None  # the upsert key's value (None: create)
    values: dict[str, Any]
    address: dict[str, Any] | None
    custom: dict[str, str]
    tags: list[str] | None = None  # the customer's tags as the file lists them; None: no column
    consent: dict[str, Consent] | None = None  # channel -> what its cell says (empty: absent)


class RowRefused(Exception):
    def __init__(self, column: str | None, code: UserErrorCode, message: str) -> None:
        super().__init__(message)
        self.column, self.code, self.message = column, code, message


def problem(refused: Refused, column: str | None) -> RowRefused:
    p = refused.problems[0]
    return RowRefused(column, p.code, p.message)


class Planner:
    """Turns rows into plans with the write side's validation."""

    def __init__(self, columns: ColumnMap, key: str, definitions: dict[str, Any]) -> None:
        self.key = key
        self.definitions = definitions
        self.column_of = {f: columns.header[i] for i, f in columns.fields.items()}

    def plan(self, row: Row) -> Plan | Rejected:
        try:
            return self._plan(row)
        except RowRefused as exc:
            return Rejected(row.line, _masked(row.raw), exc.column, exc.code, exc.message)

    def _col(self, name: str) -> str | None:
        return self.column_of.get(name)

    def _plan(self, row: Row) -> Plan:
        v = row.values
        # Before anything else, and never echoed: a card number in any cell.
        for cell_field, cell in row.values.items():
            if validate.contains_card_number(cell):
                raise RowRefused(
                    self._col(cell_field),
                    UserErrorCode.CARD_NUMBER_REFUSED,
                    "This cell holds what looks like a card number; it was not imported.",
                )
        values: dict[str, Any] = {}
        for name in ("first_name", "last_name", "company_name", "reference_id", "note", "tax_code"):
            if name in v:
                values[name] = v[name].strip() or None
        full = (v.get("full_name") or "").strip()
        if full and not values.get("first_name") and not values.get("last_name"):
            first, _, last = full.rpartition(" ")
            values["first_name"], values["last_name"] = (first or None), last or None
        country = self._country(v.get("address.country"))
        if "email" in v:
            try:
                values["email"] = validate.email(v["email"], [self._col("email") or "email"])
            except Refused as refused:
                raise problem(refused, self._col("email")) from None
        if "phone" in v:
            try:
                values["phone"] = validate.phone(v["phone"], country, [])
            except Refused as refused:
                raise problem(refused, self._col("phone")) from None
        if "tax_exempt" in v:
            try:
                exempt = boolean(v["tax_exempt"], self._col("tax_exempt") or "")
            except Refused as refused:
                raise problem(refused, self._col("tax_exempt")) from None
            values["tax_status"] = "EXEMPT" if exempt else "TAXABLE"
        if not any(values.get(n) for n in ("first_name", "last_name", "company_name", "email")):
            raise RowRefused(
                None, UserErrorCode.REQUIRED, "Give a first or last name, a company or an email."
            )
        if v.get("kind", "").strip():
            try:
                values["kind"] = kind(v["kind"], self._col("kind") or "")
            except Refused as refused:
                raise problem(refused, self._col("kind")) from None
        elif "company_name" in values:  # no kind given: a company without a person is one
            person = values.get("first_name") or values.get("last_name")
            values["kind"] = "BUSINESS" if values["company_name"] and not person else "INDIVIDUAL"
        key = values.get(self.key)
        if self.key == "email" and isinstance(key, str):
            key = key.lower()
        address = self._address(v, country)
        plan = Plan(row.line, row.raw, key, values, address, self._custom(v))
        if "tags" in v:
            plan.tags = self._tags(v["tags"])
        plan.consent = {
            channel: self._consent(channel, v[f"{channel}_marketing"])
            for channel in CONSENT_CHANNELS
            if v.get(f"{channel}_marketing", "").strip()
        }
        return plan

    def _tags(self, raw: str) -> list[str]:
        """A comma-separated list ("VIP, wholesale", Shopify's cell): each tag by
        customerTagsAdd's rules; empty items (a trailing comma) are no tag."""
        column = self._col("tags")
        given = [t for t in (part.strip() for part in raw.split(",")) if t]
        for tag in given:
            why = tag_rules.problem(tag)
            if why is not None:
                shown = tag if len(tag) <= 60 else f"{tag[:60]}…"
                raise RowRefused(column, UserErrorCode.INVALID, f"{why} ({shown!r})")
        try:  # what is left: card numbers, and duplicates without regard to case
            tags = tag_rules.clean(given, [column or "tags"])
        except Refused as refused:
            raise problem(refused, column) from None
        if len(tags) > tag_rules.MAX_PER_CUSTOMER:
            raise RowRefused(
                column,
                UserErrorCode.INVALID,
                tag_rules.too_many("The customer", tags),
            )
        return tags

    def _consent(self, channel: str, raw: str) -> Consent:
        text = raw.strip()
        name = text.upper().replace(" ", "_").replace("-", "_")
        if name in MarketingState.__members__:
            return MarketingState[name]
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise RowRefused(
            self._col(f"{channel}_marketing"),
            UserErrorCode.INVALID,
            "Use yes/no, true/false, 1/0 or a state: SUBSCRIBED, UNSUBSCRIBED, PENDING,"
            " NOT_SUBSCRIBED.",
        )

    def _country(self, raw: str | None) -> str | None:
        if raw is None or not raw.strip():
            return None
        code, refused = _country_code(raw.strip())
        if refused is not None:
            raise problem(refused, self._col("address.country"))
        return code

    def _address(self, v: dict[str, str], country: str | None) -> dict[str, Any] | None:
        parts = {k: v[f"address.{k}"].strip() for k in ADDRESS_COLUMNS if f"address.{k}" in v}
        parts = {k: x or None for k, x in parts.items()}
        if not any(parts.values()):
            return None
        if not parts.get("line1") and not any(
            parts.get(k) for k in ("line2", "city", "postal_code", "company")
        ):
            return None  # a country (or region) alone: it reads the phone numbers, no address
        if not parts.get("line1"):
            raise RowRefused(
                self._col("address.line1"), UserErrorCode.REQUIRED, "Give the street address."
            )
        if country is None:
            raise RowRefused(
                self._col("address.country"), UserErrorCode.REQUIRED, "Give the address's country."
            )
        parts["country"] = country
        region = parts.get("region")
        if region:
            code, refused = _region_code(region, country)
            if refused is not None:
                raise problem(refused, self._col("address.region"))
            parts["region"] = code
        if parts.get("phone"):
            try:
                parts["phone"] = validate.phone(parts["phone"], country, [])
            except Refused as refused:
                raise problem(refused, self._col("address.phone")) from None
        if parts.get("company") is None:
            parts.pop("company", None)
        return parts

    def _custom(self, v: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, raw in v.items():
            if not name.startswith("custom:") or not raw.strip():
                continue
            key = name.removeprefix("custom:")
            d = self.definitions[key]
            text = raw.strip()
            kind = CustomFieldType(d.type)
            try:
                if kind is CustomFieldType.BOOLEAN:
                    text = "true" if boolean(text, name) else "false"
                parse_custom(kind, text, d.options)
            except Refused as refused:
                raise problem(refused, self._col(name)) from None
            out[key] = text
        return out


CARD_REMOVED = "[card number removed]"


def _masked(raw: list[str]) -> list[str]:
    """The row for the error report, without card numbers (they go nowhere, not even there)."""
    return [CARD_REMOVED if validate.contains_card_number(cell) else cell for cell in raw]


# pycountry's lookups, cached: a file repeats a few countries and regions on every row.
@functools.lru_cache(maxsize=4096)
def _country_code(text: str) -> tuple[str | None, Refused | None]:
    if len(text) == 2:
        code = text.upper()
    else:  # "Germany", "DEU": what a person or another system wrote
        try:
            code = pycountry.countries.lookup(text).alpha_2
        except LookupError:
            code = text
    try:
        return validate.country(code, []), None
    except Refused as refused:
        return None, refused


@functools.lru_cache(maxsize=4096)
def _region_code(raw: str, country: str) -> tuple[str | None, Refused | None]:
    try:
        return validate.region(_subdivision(raw, country), country, []), None
    except Refused as refused:
        return None, refused


def _subdivision(raw: str, country: str) -> str:
    """A region code, or the code of a region written out ("California", "Bayern")."""
    text = raw.strip()
    if len(text) <= 3 or text.upper().startswith(f"{country}-"):
        return text
    for sub in pycountry.subdivisions.get(country_code=country) or ():
        if sub.name.casefold() == text.casefold():
            return sub.code.split("-", 1)[1]
    return text
