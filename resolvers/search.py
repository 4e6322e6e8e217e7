"""The search screen as SQL: CustomerFilter -> WHERE clauses on the customer table.

Every clause is indexable (see the migration's indexes): folded names (cg_fold =
lower(unaccent)) for exact/prefix matches and trigrams for fuzzy ones, E.164 digits for
phones, normalised postal codes, and EXISTS sub-selects on addresses, channels, orders and
custom field values that walk their own indexes. Clauses combine with AND. Scoping is
applied first, by resolvers/scope.py, like every other customer query.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import phonenumbers
import pycountry
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from models import (
    Account,
    Address,
    CustomerSalesChannel,
    CustomFieldDefinition,
    CustomFieldValue,
    Order,
)
from models.enums import CustomerStatus, CustomFieldType, MarketingState
from resolvers import custom_fields
from resolvers import tags as tag_q
from resolvers.context import Context
from resolvers.customers import customer, visible_customers
from resolvers.errors import BadUserInput
from resolvers.tags import TagFilter

address = Address.__table__
account = Account.__table__
link = CustomerSalesChannel.__table__
orders = Order.__table__
definition = CustomFieldDefinition.__table__
value = CustomFieldValue.__table__


class TextMatch(enum.Enum):
    EXACT = "EXACT"
    PREFIX = "PREFIX"
    FUZZY = "FUZZY"


class SearchKind(enum.Enum):
    CUSTOMER = "CUSTOMER"
    ACCOUNT = "ACCOUNT"


@dataclass
class CustomFieldCriterion:
    key: str
    equals: str | None = None
    min: str | None = None
    max: str | None = None


@dataclass
class Criteria:
    """The filter, decoded (global IDs -> ints) by the schema layer."""

    kind: SearchKind = SearchKind.CUSTOMER
    sales_channels: list[int] = field(default_factory=list)
    exclude_sales_channels: list[int] = field(default_factory=list)
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    name_match: TextMatch = TextMatch.EXACT
    country: str | None = None
    state: str | None = None
    city: str | None = None
    number: str | None = None
    reference_id: str | None = None
    postal_code: str | None = None
    email: str | None = None
    phone: str | None = None
    order_id: str | None = None
    sales_rep: int | None = None
    custom_fields: list[CustomFieldCriterion] = field(default_factory=list)
    status: list[CustomerStatus] | None = None
    tags: TagFilter = field(default_factory=TagFilter)
    email_marketing: MarketingState | None = None
    sms_marketing: MarketingState | None = None

    def is_empty(self) -> bool:
        return not any(
            getattr(self, f) for f in self.__dataclass_fields__ if f not in ("kind", "name_match")
        )


def _fold(value: str) -> ColumnElement:
    return func.cg_fold(literal(value.strip()))


# A prefix this long matches few enough rows for one generic plan (an index range walk)
# to serve every value. Shorter ones stay LIKE, planned per value: "s" matches 1 customer
# in 16, where walking the primary key is 4x faster than the range (docs/architecture.md).
RANGE_PREFIX = 4
# What marks a statement with a bounded prefix: server/compiled.py runs those on a generic
# plan, which PostgreSQL would not choose (it estimates a range on a parameter at 0.5%).
BOUNDED_PREFIX = "cg_prefix_end("
# cg_prefix_end has no bound for a prefix made of the last code point alone.
_NO_SUCCESSOR = "\U0010ffff"


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_match(column: ColumnElement, value: str, how: TextMatch) -> ColumnElement[bool]:
    folded = func.cg_fold(column)
    if how is TextMatch.PREFIX:
        prefix = value.strip()
        if len(prefix) < RANGE_PREFIX or _NO_SUCCESSOR in prefix:
            return folded.like(func.cg_fold(literal(_escape_like(prefix))) + "%")
        # The same match as an index range (migration 0024): one generic plan serves every
        # value of the prepared statement, where LIKE on a parameter is planned each time.
        start = _fold(prefix)
        return and_(folded.op("~>=~")(start), folded.op("~<~")(func.cg_prefix_end(start)))
    if how is TextMatch.FUZZY:
        return folded.op("%")(_fold(value))  # pg_trgm similarity above its threshold (0.3)
    return folded == _fold(value)


def country_code(raw: str) -> str:
    code = raw.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise BadUserInput(
            f"Unknown country code {raw!r}: use ISO 3166-1 alpha-2, e.g. US.",
            argument="filter.country",
        )
    return code


def state_code(raw: str, country: str | None) -> tuple[str, str]:
    """(country, subdivision) from "CA" + country, or a full ISO 3166-2 code "US-CA"."""
    code = raw.strip().upper()
    if "-" in code:
        country_part, _, code = code.partition("-")
        country = country_code(country_part)
    if country is None:
        raise BadUserInput(
            "'state' needs 'country' (or a full code such as US-CA).", argument="filter.state"
        )
    if pycountry.subdivisions.get(code=f"{country}-{code}") is None:
        raise BadUserInput(
            f"Unknown state {raw!r} in {country}: use ISO 3166-2.", argument="filter.state"
        )
    return country, code


def phone_digits(raw: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(raw, region or "US")
    except phonenumbers.NumberParseException as exc:
        raise BadUserInput(
            f"Cannot read {raw!r} as a phone number.", argument="filter.phone"
        ) from exc
    if not phonenumbers.is_possible_number(number):
        raise BadUserInput(f"{raw!r} is not a possible phone number.", argument="filter.phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def postal_norm(raw: str) -> str:
    return "".join(raw.split()).upper()


def _typed(kind: CustomFieldType, raw: str, key: str) -> Any:
    try:
        if kind is CustomFieldType.NUMBER:
            return custom_fields.number(raw)
        if kind is CustomFieldType.DATE:
            return date.fromisoformat(raw)
        if kind is CustomFieldType.BOOLEAN:
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        return raw
    except ValueError as exc:
        raise BadUserInput(
            f"{raw!r} is not a valid {kind.value} for custom field {key!r}.",
            argument="filter.customFields",
        ) from exc


COLUMN_OF = {
    CustomFieldType.TEXT: value.c.text_value,
    CustomFieldType.SELECT: value.c.text_value,
    CustomFieldType.NUMBER: value.c.number_value,
    CustomFieldType.DATE: value.c.date_value,
    CustomFieldType.BOOLEAN: value.c.boolean_value,
}


async def _definitions(ctx: Context, keys: list[str]) -> dict[str, Any]:
    if not keys:
        return {}
    rows = await ctx.rows(select(definition).where(definition.c.key.in_(keys)))
    found = {row.key: row for row in rows}
    missing = sorted(set(keys) - set(found))
    if missing:
        raise BadUserInput(
            f"Unknown custom field(s): {', '.join(missing)}.", argument="filter.customFields"
        )
    return found


async def conditions(ctx: Context, c: Criteria) -> list[ColumnElement[bool]]:
    """WHERE clauses for the customer table (validates the input on the way)."""
    return plain_conditions(c) + await custom_field_conditions(ctx, c)


def plain_conditions(c: Criteria) -> list[ColumnElement[bool]]:
    """The clauses that need no lookup: everything but custom fields (the compiled read
    path builds its SQL from these too)."""
    where: list[ColumnElement[bool]] = []
    statuses = c.status or [CustomerStatus.ACTIVE, CustomerStatus.ARCHIVED]
    where.append(customer.c.status.in_(statuses))
    if CustomerStatus.MERGED not in statuses:
        where.append(customer.c.status != CustomerStatus.MERGED)  # matches partial indexes
    accounts_only = c.kind is SearchKind.ACCOUNT
    for attr, column in (
        ("first_name", customer.c.first_name),
        ("last_name", customer.c.last_name),
    ):
        if getattr(c, attr):
            where.append(text_match(column, getattr(c, attr), c.name_match))
    if c.company:
        if accounts_only:
            where.append(
                customer.c.account_id.in_(
                    select(account.c.id).where(text_match(account.c.name, c.company, c.name_match))
                )
            )
        else:
            where.append(text_match(customer.c.company_name, c.company, c.name_match))
    if c.number:
        # Account numbers are unique: a scalar sub-select keeps both sides index conditions
        # (a BitmapOr), where `IN (SELECT …)` under OR would scan every customer.
        account_number = (
            select(account.c.id).where(account.c.number == c.number.strip()).scalar_subquery()
        )
        in_account = customer.c.account_id == account_number
        where.append(
            in_account if accounts_only else or_(customer.c.number == c.number.strip(), in_account)
        )
    if c.reference_id:
        where.append(customer.c.reference_id == c.reference_id.strip())
    if c.email:
        where.append(customer.c.email == c.email.strip())
    country = country_code(c.country) if c.country else None
    if c.phone:
        where.append(customer.c.phone_digits == phone_digits(c.phone, country))
    if c.order_id:
        where.append(
            customer.c.id.in_(
                select(orders.c.customer_id).where(orders.c.number == c.order_id.strip())
            )
        )
    if c.sales_rep is not None:
        where.append(customer.c.sales_rep_id == c.sales_rep)
    where += tag_q.conditions(c.tags)
    if c.email_marketing is not None:
        where.append(customer.c.email_marketing_state == c.email_marketing)
    if c.sms_marketing is not None:
        where.append(customer.c.sms_marketing_state == c.sms_marketing)
    # Address fields match one address that satisfies all of them.
    place: list[ColumnElement[bool]] = []
    if c.state:
        country, state = state_code(c.state, country)
        place += [address.c.country == country, address.c.region == state]
    elif country:
        place.append(address.c.country == country)
    if c.city:
        place.append(func.cg_fold(address.c.city) == _fold(c.city))
    if c.postal_code:
        place.append(address.c.postal_code_norm == postal_norm(c.postal_code))
    if place:
        where.append(customer.c.id.in_(select(address.c.customer_id).where(*place)))
    if c.sales_channels:
        where.append(
            customer.c.id.in_(
                select(link.c.customer_id).where(link.c.sales_channel_id.in_(c.sales_channels))
            )
        )
    if c.exclude_sales_channels:
        where.append(
            ~exists().where(
                link.c.customer_id == customer.c.id,
                link.c.sales_channel_id.in_(c.exclude_sales_channels),
            )
        )
    return where


async def custom_field_conditions(ctx: Context, c: Criteria) -> list[ColumnElement[bool]]:
    """Custom-field clauses: typed by each definition, loaded (and checked) first."""
    where: list[ColumnElement[bool]] = []
    definitions = await _definitions(ctx, [f.key for f in c.custom_fields])
    for criterion in c.custom_fields:
        d = definitions[criterion.key]
        kind = CustomFieldType(d.type)
        column = COLUMN_OF[kind]
        test: list[ColumnElement[bool]] = [value.c.definition_id == d.id]
        if criterion.equals is not None:
            test.append(column == _typed(kind, criterion.equals, d.key))
        if criterion.min is not None or criterion.max is not None:
            if kind not in (CustomFieldType.NUMBER, CustomFieldType.DATE):
                raise BadUserInput(
                    f"Ranges apply to NUMBER and DATE fields, not {d.key!r}.",
                    argument="filter.customFields",
                )
            if criterion.min is not None:
                test.append(column >= _typed(kind, criterion.min, d.key))
            if criterion.max is not None:
                test.append(column <= _typed(kind, criterion.max, d.key))
        where.append(customer.c.id.in_(select(value.c.customer_id).where(and_(*test))))
    return where


async def filtered_customers(ctx: Context, c: Criteria) -> Select:
    """Visible customers matching the criteria (unordered; callers paginate or count)."""
    return visible_customers(ctx).where(*await conditions(ctx, c))


async def filtered_accounts(ctx: Context, c: Criteria) -> Select:
    """Accounts with at least one visible customer matching the criteria."""
    customers = (await filtered_customers(ctx, c)).with_only_columns(customer.c.account_id)
    return select(account).where(
        account.c.id.in_(customers.where(customer.c.account_id.is_not(None)))
    )


# RefineSearch counts its facets over the newest FACET_SAMPLE matches (highest ids): a
# sample the same for both read paths whatever the plan, read from indexes alone when the
# filter's are (ix_customer_live_id carries id, status, kind and rep; each filter on a
# child table has a covering index: migration 0018). Counting every match instead took
# 0.5-1 s on 1,000,000 customers (bench.search); docs/architecture.md (Search) has the
# numbers and the alternatives weighed.
FACET_SAMPLE = 1_000
FACET_SIZE = 10  # values per facet, most frequent first, ties by value
FACETS = ("kinds", "states", "salesChannels", "salesReps", "tags")


@dataclass(frozen=True)
class Sample:
    """The sample as three arrays (SQL expressions): ids, kinds (text) and sales reps.

    Bound parameters on the field-by-field path, the columns of the compiled statement's
    sample row there: the facet statements below are the same SQL on both paths.
    """

    ids: ColumnElement
    kinds: ColumnElement
    reps: ColumnElement


def sample_select(base: Select, cap: int) -> Select:
    """One row: n (how many of the newest FACET_SAMPLE matches), and their ids, kinds and
    reps. More than the cap means RefineSearch; otherwise the ids are every match."""
    size = max(FACET_SAMPLE, cap + 1)
    columns = (customer.c.id, customer.c.kind, customer.c.sales_rep_id)
    rows = base.with_only_columns(*columns).order_by(customer.c.id.desc()).limit(size)
    rows = rows.subquery("sample")
    return select(
        func.count().label("n"),
        func.array_agg(rows.c.id).label("ids"),
        func.array_agg(rows.c.kind.cast(Text)).label("kinds"),
        func.array_agg(rows.c.sales_rep_id).label("reps"),
    )


def _ranked(value: ColumnElement, n: ColumnElement, *ties: ColumnElement) -> list:
    rank = func.row_number().over(order_by=(n.desc(), *(ties or (value,))))
    return [value.label("value"), n.label("n"), rank.label("rank")]


def _unnested(array: ColumnElement, name: str):
    return func.unnest(array).table_valued("value", name=name).render_derived()


def facet_selects(s: Sample) -> dict[str, Select]:
    """Each facet as (value, n, rank): its FACET_SIZE most frequent values among the
    sample, most frequent first, ties by value. Values: kinds and states as text (an ISO
    code, US or US-CA), channels and reps as ids, tags as a tag."""
    kinds = _unnested(s.kinds, "k")
    reps = _unnested(s.reps, "r")
    places = func.count(func.distinct(address.c.customer_id))
    selects = {
        "kinds": select(*_ranked(kinds.c.value, func.count())).group_by(kinds.c.value),
        "states": select(
            *_ranked(
                func.concat_ws("-", address.c.country, address.c.region),
                places,
                address.c.country,
                address.c.region,
            )
        )
        .where(address.c.customer_id == func.any(s.ids))
        .group_by(address.c.country, address.c.region),
        "salesChannels": select(*_ranked(link.c.sales_channel_id, func.count()))
        .where(link.c.customer_id == func.any(s.ids))
        .group_by(link.c.sales_channel_id),
        "salesReps": select(*_ranked(reps.c.value, func.count()))
        .where(reps.c.value.is_not(None))
        .group_by(reps.c.value),
    }
    selects = {
        name: q.order_by(literal_column("rank")).limit(FACET_SIZE) for name, q in selects.items()
    }
    selects["tags"] = tag_q.facet_select(s.ids, FACET_SIZE)
    return selects


def matches_of(ctx: Context, ids: list[int]) -> Select:
    """The viewer's customers among `ids` (every match, from refine_or_matches)."""
    return visible_customers(ctx).where(
        customer.c.id == func.any(bindparam("matches", ids, type_=ARRAY(BigInteger)))
    )


def refine_message(cap: int) -> str:
    return f"More than {cap} customers match: add a filter to narrow the search."


@dataclass
class Refine:
    cap: int
    sample_size: int
    facets: dict[str, list[tuple[str, int]]]  # name -> [(value, count)], most frequent first

    @property
    def count_at_least(self) -> int:
        return self.cap + 1


async def refine_or_matches(ctx: Context, base: Select) -> Refine | list[int]:
    """RefineSearch when more than the cap match; else the ids of every match (the page
    reads them instead of running the filter again).

    The filter runs once, bounded (sample_select); the facets are one more statement over
    the sample's arrays, the one the compiled path prints as JSON.
    """
    cap = ctx.settings.search_cap
    (found,) = await ctx.rows(sample_select(base, cap))
    if found.n <= cap:
        return list(found.ids or [])
    arrays = Sample(
        ids=bindparam("ids", found.ids, type_=ARRAY(BigInteger)),
        kinds=bindparam("kinds", found.kinds, type_=ARRAY(Text)),
        reps=bindparam("reps", found.reps, type_=ARRAY(BigInteger)),
    )
    parts = []
    for name, facet in facet_selects(arrays).items():
        value, n, rank = facet.subquery(name).c  # tags name their value `tag`
        parts.append(select(literal(name).label("facet"), value.cast(Text).label("value"), n, rank))
    every = union_all(*parts).subquery("facets")
    rows = await ctx.rows(select(every).order_by(every.c.facet, every.c.rank))
    facets: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS}
    for row in rows:
        facets[row.facet].append((row.value, row.n))
    return Refine(cap=cap, sample_size=found.n, facets=facets)
