"""Every single-field filter is index-driven: EXPLAIN shows no sequential scan of customer.

20,000 customers with realistic cardinalities are inserted with one INSERT … SELECT each
table, then ANALYZEd; each filter's real SQL (built by resolvers/search.py, scoped as an
ADMIN) is EXPLAINed. Exclusion (`excludeSalesChannels`) alone is not in the list: "in
none of" cannot be answered from an index, and is meant to be combined with other fields.
"""

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from models.enums import Role
from resolvers.context import Context
from resolvers.search import (
    Criteria,
    CustomFieldCriterion,
    SearchKind,
    TextMatch,
    filtered_customers,
)
from resolvers.tags import TagFilter
from resolvers.viewer import Viewer

N = 20_000
SEED = [
    "INSERT INTO app_user (id, email, role) SELECT g, 'rep' || g || '@x.test', 'SALES_REP'"
    " FROM generate_series(1, 200) g",
    "INSERT INTO sales_channel (id, code, name) SELECT g, 'ch' || g, 'Channel ' || g"
    " FROM generate_series(1, 200) g",
    "INSERT INTO account (id, number, name) SELECT g, 'A-' || lpad(g::text, 6, '0'),"
    " 'Account ' || g FROM generate_series(1, 2000) g",
    f"""INSERT INTO customer (id, number, first_name, last_name, company_name, email, phone,
        reference_id, sales_rep_id, account_id)
      SELECT g, 'C-' || lpad(g::text, 6, '0'), 'First' || g,
             initcap(translate(substr(md5(g::text), 1, 9), '0123456789', 'aeiouybdkr')),
             'Company ' || g,
             'c' || g || '@x.test', '+1415' || lpad(g::text, 7, '0'), 'REF' || g,
             1 + g % 200, CASE WHEN g % 10 = 0 THEN 1 + g % 2000 END
      FROM generate_series(1, {N}) g""",
    # Tags: one of 300 per customer, and "vip" on one customer in 100.
    """UPDATE customer SET tags = CASE WHEN id % 100 = 0 THEN ARRAY['t' || id % 300, 'VIP']
      ELSE ARRAY['t' || id % 300] END""",
    f"""INSERT INTO address (customer_id, kind, line1, city, region, postal_code, country)
      SELECT g, 'SHIPPING', g || ' Road', 'City' || (g % 2000),
             CASE WHEN g % 500 = 0 THEN 'CA' ELSE 'NY' END, 'P' || g,
             CASE WHEN g % 400 = 0 THEN 'FR' ELSE 'US' END
      FROM generate_series(1, {N}) g""",
    f"INSERT INTO customer_sales_channel SELECT g, 1 + g % 200 FROM generate_series(1, {N}) g",
    f"""INSERT INTO orders (customer_id, number, source, currency, subtotal, tax_total, total,
        placed_at) SELECT g, 'O-' || lpad(g::text, 6, '0'), 'ADMIN', 'USD', 1, 0, 1, now()
      FROM generate_series(1, {N}, 3) g""",
    "INSERT INTO custom_field_definition (id, key, label, type) VALUES (1, 'ltv', 'LTV', 'NUMBER')",
    f"INSERT INTO custom_field_value (customer_id, definition_id, number_value)"
    f" SELECT g, 1, g FROM generate_series(1, {N}) g",
]

FILTERS = {
    "firstName": Criteria(first_name="first123"),
    "firstName PREFIX": Criteria(first_name="First1234", name_match=TextMatch.PREFIX),
    # md5('12345') starts 827ccb0ee: the seeded name of customer 12345, with one typo.
    "lastName FUZZY": Criteria(last_name="Kidccbaea", name_match=TextMatch.FUZZY),
    "company": Criteria(company="company 77"),
    "company (ACCOUNT)": Criteria(company="account 11", kind=SearchKind.ACCOUNT),
    "country": Criteria(country="FR"),
    "state": Criteria(country="US", state="CA"),
    "city": Criteria(city="city77"),
    "number": Criteria(number="C-000077"),
    "referenceId": Criteria(reference_id="REF77"),
    "postalCode": Criteria(postal_code="p 77"),
    "email": Criteria(email="C77@x.test"),
    "phone": Criteria(phone="(415) 000-0077"),
    "orderId": Criteria(order_id="O-000076"),
    "salesRep": Criteria(sales_rep=7),
    "salesChannels": Criteria(sales_channels=[7]),
    "tags any": Criteria(tags=TagFilter(any=["vip"])),
    "tags all": Criteria(tags=TagFilter(all=["T100", "vip"])),
    "customFields range": Criteria(custom_fields=[CustomFieldCriterion("ltv", min="10", max="20")]),
}


@pytest.fixture
async def seeded(engine):
    async with engine.begin() as conn:
        for sql in SEED:
            await conn.execute(text(sql))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))


async def test_every_single_field_filter_uses_an_index(engine, settings, seeded):
    ctx = Context(engine=engine, settings=settings, viewer=Viewer(user_id=0, role=Role.ADMIN))
    problems = []
    for name, criteria in FILTERS.items():
        stmt = await filtered_customers(ctx, criteria)
        sql = str(
            stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        ).replace("%%", "%")  # the compiler escapes % for a format paramstyle; text() does not
        async with engine.connect() as conn:
            plan = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {sql}")))
            matches = (await conn.execute(text(f"SELECT count(*) FROM ({sql}) s"))).scalar()
        if "Seq Scan on customer" in plan:
            problems.append(f"{name}: sequential scan\n{plan}")
        if not matches:
            problems.append(f"{name}: matched nothing; the test data must exercise it")
    assert not problems, "\n\n".join(problems)


async def test_a_long_prefix_keeps_one_generic_plan_on_the_index(engine, settings, seeded):
    """A prepared search is planned once for every value only if its generic plan (one
    without the values) still walks the name index: LIKE on a parameter cannot."""
    # PostgreSQL would choose between generic and per-value plans; force the generic one.
    from sqlalchemy.dialects.postgresql import asyncpg

    ctx = Context(engine=engine, settings=settings, viewer=Viewer(user_id=0, role=Role.ADMIN))
    plans = {}
    for prefix in ("Kid", "Kidc"):
        stmt = await filtered_customers(
            ctx, Criteria(last_name=prefix, name_match=TextMatch.PREFIX, country="FR")
        )
        compiled = stmt.compile(
            dialect=asyncpg.dialect(), compile_kwargs={"render_postcompile": True}
        )
        sql = str(compiled).replace("%%", "%")
        args = [getattr(v, "value", v) for v in (compiled.params[k] for k in compiled.positiontup)]
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute(f"PREPARE find AS {sql}")
            await raw.execute("SET plan_cache_mode = force_generic_plan")
            values = ", ".join("'" + str(a).replace("'", "''") + "'" for a in args)
            plan = await raw.fetch(f"EXPLAIN EXECUTE find({values})")
            await raw.execute("DEALLOCATE find; RESET plan_cache_mode")
            plans[prefix] = "\n".join(r[0] for r in plan)
    long_plan = plans["Kidc"]
    assert "$" in long_plan, long_plan  # planned without the values
    assert "ix_customer_last_name_fold" in long_plan and "~>=~" in long_plan, long_plan
    assert "Seq Scan on customer" not in long_plan, long_plan
    # Three letters stay LIKE, planned per value (a broad prefix walks the primary key).
    assert "~>=~" not in plans["Kid"] and "~~" in plans["Kid"], plans["Kid"]


# Names and prefixes where a bound made by appending U+FFFF, or bumping into a surrogate,
# or ignoring accents, would disagree with LIKE.
NAMES = [
    "Ab",
    "abc",
    "Abd",
    "ab\ud7ff",
    "ab\ue000x",
    "ab\U0001f600",
    "ab\U0010ffff",
    "ab\U0010ffffz",
    "ac",
    "Ärger",
    "arger",
    "ab%c",
    "ab_c",
    "ab\\c",
    "b",
    "Zoë",
    "zoey",
]
PREFIXES = [
    "ab",
    "Ab",
    "a",
    "ab\ud7ff",
    "ab\U0010ffff",
    "ärg",
    "ab%",
    "ab_",
    "ab\\",
    "zoe",
    "\U0010ffff",
    "z",
]


async def test_the_prefix_range_matches_exactly_what_like_matches(engine):
    assert await _like_against_range(engine) == []
    async with engine.connect() as conn:
        ends = await conn.execute(
            text("SELECT cg_prefix_end(:a), cg_prefix_end(:b), cg_prefix_end(:c)"),
            {"a": "ab\ud7ff", "b": "ab\U0010ffff", "c": "\U0010ffff"},
        )
        # U+D800-DFFF cannot be text; after U+10FFFF comes the next character before it;
        # a prefix of U+10FFFF alone has no bound (resolvers/search.py keeps LIKE for it).
        assert ends.one() == ("ab\ue000", "ac", None)


async def _like_against_range(engine) -> list:
    from resolvers.search import _escape_like

    sql = text(
        """SELECT n, p FROM unnest(CAST(:names AS text[])) n,
             unnest(CAST(:prefixes AS text[]), CAST(:escaped AS text[])) AS q(p, e)
           WHERE (cg_fold(n) LIKE cg_fold(e) || '%')
             IS DISTINCT FROM (cg_fold(n) ~>=~ cg_fold(p)
                               AND cg_fold(n) ~<~ cg_prefix_end(cg_fold(p)))
             AND cg_prefix_end(cg_fold(p)) IS NOT NULL"""
    )
    async with engine.connect() as conn:
        return (
            await conn.execute(
                sql,
                {
                    "names": NAMES,
                    "prefixes": PREFIXES,
                    "escaped": [_escape_like(p) for p in PREFIXES],
                },
            )
        ).all()
