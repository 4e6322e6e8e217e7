"""The search screen: `CustomerFilter` (for customers/accounts) and capped `customerSearch`."""

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from resolvers import customers as customer_q
from resolvers import sales_channels as channel_q
from resolvers import saved_searches as saved_search_q
from resolvers import search as q
from resolvers import tags as tag_q
from resolvers import users as user_q
from resolvers.context import viewer_of
from resolvers.global_ids import decode_id
from resolvers.loading import count
from resolvers.pagination import FORWARD_PAGING, Ordering, PageArgs, check_cursors
from schema.base import build
from schema.enums import CustomerStatus, MarketingState
from schema.inputs import from_json
from schema.pagination import Connection, connection
from schema.sales_channels import SalesChannel
from schema.tags import TagCount, TagFilter
from schema.users import User

if TYPE_CHECKING:
    from schema.customers import Customer

TextMatch = strawberry.enum(q.TextMatch, description="How names compare (case/accents ignored).")
SearchKind = strawberry.enum(
    q.SearchKind,
    description="CUSTOMER: company/number match the customer. ACCOUNT: they match the "
    "billing account's name and number (use `accounts(filter:)` to list accounts).",
)


@strawberry.input(description="Typed match on an admin-defined field: equals, or a range.")
class CustomFieldFilter:
    key: str
    equals: str | None = None
    min: str | None = strawberry.field(default=None, description="NUMBER or DATE (ISO).")
    max: str | None = strawberry.field(default=None, description="NUMBER or DATE (ISO).")


@strawberry.input(description="The search screen, field for field. Fields combine with AND.")
class CustomerFilter:
    sales_channels: list[strawberry.ID] | None = strawberry.field(
        default=None, description="In any of these channels."
    )
    exclude_sales_channels: list[strawberry.ID] | None = strawberry.field(
        default=None, description="In none of these channels."
    )
    kind: SearchKind = q.SearchKind.CUSTOMER
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = strawberry.field(
        default=None, description="Company (store) name, or the account name in ACCOUNT mode."
    )
    name_match: TextMatch = strawberry.field(
        default=q.TextMatch.EXACT,
        description="For firstName, lastName and company: EXACT, PREFIX or FUZZY (trigram).",
    )
    country: str | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2.")
    state: str | None = strawberry.field(
        default=None, description="ISO 3166-2 subdivision: 'CA' with country, or 'US-CA'."
    )
    city: str | None = None
    number: str | None = strawberry.field(
        default=None, description="Customer number or account number."
    )
    reference_id: str | None = strawberry.field(default=None, description='"Other ID".')
    postal_code: str | None = strawberry.field(
        default=None, description="Compared without case or spaces."
    )
    email: str | None = strawberry.field(default=None, description="Case-insensitive, exact.")
    phone: str | None = strawberry.field(
        default=None, description="Any formatting; national numbers read in `country` (or US)."
    )
    order_id: str | None = strawberry.field(
        default=None, description="An order number (O-…): its customer."
    )
    sales_rep: strawberry.ID | None = None
    custom_fields: list[CustomFieldFilter] | None = None
    tags: TagFilter | None = None
    email_marketing: MarketingState | None = strawberry.field(
        default=None, description="Customers whose email consent is in this state."
    )
    sms_marketing: MarketingState | None = strawberry.field(
        default=None, description="Customers whose SMS consent is in this state."
    )
    status: list[CustomerStatus] | None = strawberry.field(
        default=None, description="Default: live customers (ACTIVE and ARCHIVED)."
    )

    def criteria(self) -> q.Criteria:
        channels = [
            decode_id(i, "SalesChannel", "filter.salesChannels") for i in self.sales_channels or []
        ]
        excluded = [
            decode_id(i, "SalesChannel", "filter.excludeSalesChannels")
            for i in self.exclude_sales_channels or []
        ]
        rep = decode_id(self.sales_rep, "User", "filter.salesRep") if self.sales_rep else None
        return q.Criteria(
            kind=self.kind,
            sales_channels=channels,
            exclude_sales_channels=excluded,
            first_name=self.first_name,
            last_name=self.last_name,
            company=self.company,
            name_match=self.name_match,
            country=self.country,
            state=self.state,
            city=self.city,
            number=self.number,
            reference_id=self.reference_id,
            postal_code=self.postal_code,
            email=self.email,
            phone=self.phone,
            order_id=self.order_id,
            sales_rep=rep,
            custom_fields=[
                q.CustomFieldCriterion(f.key, f.equals, f.min, f.max)
                for f in self.custom_fields or []
            ],
            status=list(self.status) if self.status else None,
            tags=self.tags.criteria() if self.tags else tag_q.TagFilter(),
            email_marketing=self.email_marketing,
            sms_marketing=self.sms_marketing,
        )


def criteria_of(data: dict[str, Any]) -> q.Criteria:
    """A stored filter (GraphQL JSON) as search criteria, checked as the input would be."""
    return from_json(CustomerFilter, data).criteria()


async def saved_search_where(info: Info, saved_search: strawberry.ID) -> list:
    """The clauses of `savedSearch:` on customers/customerSearch (a GraphQL error if it
    is not yours or shared, or no longer applies)."""
    saved_id = decode_id(saved_search, "SavedSearch", "savedSearch")
    return await saved_search_q.run_where(info.context, saved_id, criteria_of)


SAMPLED = (
    f"Counted over the newest {q.FACET_SAMPLE:,} matches (highest ids; every match when"
    " fewer), not over all of them"
)


@strawberry.type
class SearchFacet:
    value: str = strawberry.field(description="An ISO code (US, US-CA) or a kind.")
    count: int = strawberry.field(description="Customers of the sample with this value.")


@strawberry.type
class SalesChannelFacet:
    sales_channel: SalesChannel | None
    count: int = strawberry.field(description="Customers of the sample in this channel.")


@strawberry.type
class SalesRepFacet:
    sales_rep: User | None
    count: int = strawberry.field(description="Customers of the sample assigned to this rep.")


@strawberry.type(
    description="Too many matches: refine the search. Facets say how: each lists its "
    f"{q.FACET_SIZE} most frequent values among a sample of the matches (`sampleSize`), "
    "most frequent first, ties by value. The sample and the counts hold only customers "
    "the viewer may see (a sales rep: their own)."
)
class RefineSearch:
    message: str
    count_at_least: int = strawberry.field(
        description="A lower bound, not a count: more than `cap` match (cap + 1)."
    )
    cap: int
    sample_size: int = strawberry.field(
        description=f"Exact: how many matches the facets were counted over, at most "
        f"{q.FACET_SAMPLE:,} (the newest by id). Below that it is every match, and the "
        "facet counts are exact."
    )
    kinds: list[SearchFacet] = strawberry.field(description=f"{SAMPLED}.")
    states: list[SearchFacet] = strawberry.field(
        description=f"Country-state pairs of the matches' addresses (a customer counts once "
        f"per pair). {SAMPLED}."
    )
    sales_channels: list[SalesChannelFacet] = strawberry.field(description=f"{SAMPLED}.")
    sales_reps: list[SalesRepFacet] = strawberry.field(description=f"{SAMPLED}.")
    tags: list[TagCount] = strawberry.field(description=f"The most used tags. {SAMPLED}.")


@strawberry.type(description="At most `cap` customers matched.")
class CustomerSearchMatches:
    customers: Connection[Annotated["Customer", strawberry.lazy("schema.customers")]]


CustomerSearchResult = Annotated[
    CustomerSearchMatches | RefineSearch, strawberry.union("CustomerSearchResult")
]


async def _refine(info: Info, refine: q.Refine) -> RefineSearch:
    ctx = info.context
    f = refine.facets
    channels, reps = await asyncio.gather(
        ctx.loader(channel_q.sales_channels_by_id).load_many(
            [int(v) for v, _ in f["salesChannels"]]
        ),
        ctx.loader(user_q.users_by_id).load_many([int(v) for v, _ in f["salesReps"]]),
    )
    return RefineSearch(
        message=q.refine_message(refine.cap),
        count_at_least=refine.count_at_least,
        cap=refine.cap,
        sample_size=refine.sample_size,
        kinds=[SearchFacet(value=v, count=n) for v, n in f["kinds"]],
        states=[SearchFacet(value=v, count=n) for v, n in f["states"]],
        sales_channels=[
            SalesChannelFacet(sales_channel=build("SalesChannel", row), count=n)
            for row, (_, n) in zip(channels, f["salesChannels"], strict=True)
        ],
        sales_reps=[
            SalesRepFacet(sales_rep=build("User", row), count=n)
            for row, (_, n) in zip(reps, f["salesReps"], strict=True)
        ],
        tags=[TagCount(name=v, customer_count=n) for v, n in f["tags"]],
    )


@strawberry.type
class SearchQueries:
    @connection(
        "The search screen: the matches, or RefineSearch (with counts and facets) "
        "when more than the cap (400) would match. An empty filter always asks to refine.",
        FORWARD_PAGING,
    )
    async def customer_search(
        self,
        info: Info,
        filter: CustomerFilter | None = None,
        saved_search: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="A saved search's filter (AND `filter`, if given)."),
        ] = None,
        *,
        page: PageArgs,
    ) -> CustomerSearchResult:
        viewer_of(info)
        ctx = info.context
        ordering = Ordering(customer_q.SORT_COLUMNS[customer_q.CustomerOrderField.NAME])
        check_cursors(ordering, page)  # even when the matches are not read
        criteria = (filter or CustomerFilter()).criteria()
        base = await q.filtered_customers(ctx, criteria)
        if saved_search is not None:
            base = base.where(*await saved_search_where(info, saved_search))
        found = await q.refine_or_matches(ctx, base)
        if isinstance(found, q.Refine):
            return await _refine(info, found)
        # Every match's id is in hand: the page reads those rows, not the filter again.
        base = q.matches_of(ctx, found)
        found, base = await customer_q.customer_page(
            ctx, page, customer_q.CustomerOrderField.NAME, False, base
        )
        return CustomerSearchMatches(
            customers=Connection.of(found, lambda r: build("Customer", r), lambda: count(ctx, base))
        )
