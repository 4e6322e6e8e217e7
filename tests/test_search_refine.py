"""RefineSearch: what its counts mean (the newest 1,000 matches, ties by value), scoping
under row-level security, and the compiled path answering it byte for byte."""

from collections import Counter

import httpx
import orjson
import pytest
from sqlalchemy import text

from server.app import create_app
from server.settings import Settings
from tests.conftest import gid
from tests.factories import make_sales_channel, make_user

N = 1_200  # customers 1..N, plus N + 1 merged into N (never counted)
PLACES = [("US", "CA"), ("US", "NY"), ("GB", "ENG"), ("DE", "BE"), ("FR", "IDF"), ("US", "TX")]
PLACES += [("CA", "ON"), ("AU", "NSW"), ("IT", "RM"), ("ES", "M"), ("SE", "AB"), ("JP", "13")]

REFINE = """query($f: CustomerFilter) { customerSearch(filter: $f) {
  __typename
  ... on CustomerSearchMatches { customers { totalCount edges { node { number } } } }
  ... on RefineSearch { __typename message countAtLeast cap sampleSize
    kinds { __typename value count } states { value count }
    salesChannels { __typename salesChannel { __typename id code name } count }
    salesReps { salesRep { id email displayName } count }
    tags { __typename name customerCount }
    first: kinds { n: count } }
} }"""


def kind(g: int) -> str:
    return "BUSINESS" if g % 4 == 0 else "INDIVIDUAL"


def places(g: int) -> set[tuple[str, str | None]]:
    home = PLACES[g % len(PLACES)]
    # Every sixth has its billing address in the same place (counted once), every tenth
    # (not sixth) one in the Netherlands with no state.
    return {home, ("NL", None)} if g % 10 == 0 and g % 6 else {home}


def channels(g: int) -> list[str]:
    return [c for c, m in (("web", 2), ("shop", 3), ("retail", 7)) if g % m == 0]


def tags(g: int) -> list[str]:
    return [f"t{g % 13}"] + (["Big"] if g % 5 == 0 else [])


@pytest.fixture
async def crowd(engine):
    rep_a, token_a = await make_user(engine, role="SALES_REP", email="a@reps.test")
    rep_b, _ = await make_user(engine, role="SALES_REP", email="b@reps.test")
    _admin, admin = await make_user(engine, role="ADMIN", email="boss@x.test")
    site, site_token = await make_user(engine, role="CUSTOMER", email="site@x.test")
    chans = {c: (await make_sales_channel(engine, c)).id for c in ("web", "shop", "retail")}
    rows = [
        {
            "g": g,
            "kind": kind(g),
            "first": f"P{g}",
            "company": f"Co {g}" if kind(g) == "BUSINESS" else None,
            "rep": rep_a if g % 3 else rep_b,
            "tags": tags(g),
            "user": site if g == 7 else None,
        }
        for g in range(1, N + 1)
    ]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO customer (id, kind, first_name, company_name, sales_rep_id, tags,"
                " user_id) VALUES (:g, CAST(:kind AS customer_kind), :first, :company, :rep, :tags,"
                " :user)"
            ),
            rows,
        )
        await conn.execute(
            text(
                "INSERT INTO customer (id, first_name, status, merged_into_id, sales_rep_id, tags)"
                " VALUES (:m, 'Gone', 'MERGED', :n, :rep, ARRAY['Big'])"
            ),
            {"m": N + 1, "n": N, "rep": rep_a},
        )
        await conn.execute(
            text("SELECT setval(pg_get_serial_sequence('customer', 'id'), :m)"), {"m": N + 1}
        )
        addresses = []
        for g in range(1, N + 1):
            home = PLACES[g % len(PLACES)]
            addresses.append({"g": g, "k": "SHIPPING", "c": home[0], "r": home[1]})
            if g % 6 == 0:
                addresses.append({"g": g, "k": "BILLING", "c": home[0], "r": home[1]})
            elif g % 10 == 0:
                addresses.append({"g": g, "k": "BILLING", "c": "NL", "r": None})
        await conn.execute(
            text(
                "INSERT INTO address (customer_id, kind, is_default, line1, city, country, region)"
                " VALUES (:g, CAST(:k AS address_kind), true, '1 St', 'Town', :c, :r)"
            ),
            addresses,
        )
        await conn.execute(
            text("INSERT INTO customer_sales_channel VALUES (:g, :c)"),
            [{"g": g, "c": chans[c]} for g in range(1, N + 1) for c in channels(g)],
        )
    return {
        "reps": {rep_a: "a@reps.test", rep_b: "b@reps.test"},
        "rep_a": rep_a,
        "channels": chans,
        "tokens": {"ADMIN": admin, "SALES_REP": token_a, "CUSTOMER": site_token},
    }


@pytest.fixture
async def both(app_engine):
    """(compiled, field by field), as the application role: row-level security applies."""
    clients = []
    for compiled in (True, False):
        settings = Settings(
            database_url="unused", compiled_reads=compiled, max_cost=10**9, max_aliases=10**6
        )
        app = create_app(engine=app_engine, settings=settings)
        clients.append(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        )
    yield clients
    for c in clients:
        await c.aclose()


async def answers(both, token: str, variables: dict) -> list[bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    out = []
    for client in both:
        r = await client.post(
            "/graphql", json={"query": REFINE, "variables": variables}, headers=headers
        )
        out.append((r.content, r.headers.get("x-customer-graph-path")))
    (a, path_a), (b, path_b) = out
    assert a == b, f"\ncompiled: {a[:2000]!r}\nloaders:  {b[:2000]!r}"
    assert (path_a, path_b) == ("compiled", None)
    return orjson.loads(a)["data"]["customerSearch"]


def top(counts: Counter, tie) -> list:
    """The facet's rule: the ten most frequent, ties by value."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], tie(kv[0])))[:10]


def expected(sample: list[int], crowd: dict) -> dict:
    code = {v: k for k, v in crowd["channels"].items()}
    state = Counter(p for g in sample for p in places(g))
    tag = Counter(t.lower() for g in sample for t in tags(g))
    rep = Counter(
        crowd["rep_a"] if g % 3 else next(r for r in crowd["reps"] if r != crowd["rep_a"])
        for g in sample
    )
    chan = Counter(crowd["channels"][c] for g in sample for c in channels(g))
    return {
        "sampleSize": len(sample),
        "kinds": [
            {"__typename": "SearchFacet", "value": k, "count": n}
            for k, n in top(Counter(map(kind, sample)), str)
        ],
        "states": [
            {"value": "-".join(p for p in place if p), "count": n}
            for place, n in top(state, lambda p: (p[0], p[1] is None, p[1] or ""))
        ],
        "salesChannels": [code[c] for c, _ in top(chan, int)],
        "channelCounts": [n for _, n in top(chan, int)],
        "salesReps": [(crowd["reps"][r], n) for r, n in top(rep, int)],
        "tags": [
            {"__typename": "TagCount", "name": "Big" if t == "big" else t, "customerCount": n}
            for t, n in top(tag, lambda t: t.encode())
        ],
    }


def check(result: dict, want: dict) -> None:
    assert result["__typename"] == "RefineSearch"
    assert result["countAtLeast"] == 401 and result["cap"] == 400
    assert result["message"] == "More than 400 customers match: add a filter to narrow the search."
    assert result["sampleSize"] == want["sampleSize"]
    assert result["kinds"] == want["kinds"]
    assert result["first"] == [{"n": k["count"]} for k in want["kinds"]]
    assert result["states"] == want["states"]
    assert [f["salesChannel"]["code"] for f in result["salesChannels"]] == want["salesChannels"]
    assert [f["count"] for f in result["salesChannels"]] == want["channelCounts"]
    assert [(f["salesRep"]["email"], f["count"]) for f in result["salesReps"]] == want["salesReps"]
    assert result["tags"] == want["tags"]


async def test_facets_count_the_newest_thousand_matches_ties_by_value(both, crowd):
    """1,200 match: the facets count ids 201..1,200 (the merged customer 1,201 is no match),
    the same bytes on both paths; ties (tags t0..t12) are ordered by value."""
    result = await answers(both, crowd["tokens"]["ADMIN"], {"f": {}})
    check(result, expected(list(range(N - 999, N + 1)), crowd))
    assert len({t["customerCount"] for t in result["tags"][1:]}) < 9  # ties did occur


async def test_facets_of_a_filter(both, crowd):
    """A filter's matches: 600 in the web channel (all counted)."""
    web = gid("SalesChannel", crowd["channels"]["web"])
    result = await answers(both, crowd["tokens"]["ADMIN"], {"f": {"salesChannels": [web]}})
    check(result, expected([g for g in range(1, N + 1) if g % 2 == 0], crowd))
    # 1,108 match: the newest 1,000 of them.
    rest = await answers(both, crowd["tokens"]["ADMIN"], {"f": {"tags": {"none": ["T0"]}}})
    check(rest, expected([g for g in range(1, N + 1) if g % 13][-1000:], crowd))


async def test_a_reps_facets_count_only_their_customers(both, crowd):
    """Rep A has 800 customers: all of them are the sample, and every facet counts only
    them (row-level security and the scope both hold), on both paths."""
    result = await answers(both, crowd["tokens"]["SALES_REP"], {"f": {}})
    mine = [g for g in range(1, N + 1) if g % 3]
    check(result, expected(mine, crowd))
    assert [(f["salesRep"]["email"], f["count"]) for f in result["salesReps"]] == [
        ("a@reps.test", 800)
    ]


@pytest.mark.parametrize("role", ["ADMIN", "SALES_REP", "CUSTOMER"])
async def test_both_paths_answer_alike_for_every_role(both, crowd, role):
    """Refine or matches, every role, a few filters: identical bytes, compiled."""
    web = gid("SalesChannel", crowd["channels"]["web"])
    rep = gid("User", crowd["rep_a"])
    for f in (
        {},
        {"tags": {"any": ["big"]}},
        {"salesRep": rep},
        {"salesChannels": [web]},
        {"country": "JP"},
        {"firstName": "p7"},
    ):
        await answers(both, crowd["tokens"][role], {"f": f})


async def test_compiled_refine_is_one_statement(both, crowd, counter):
    headers = {"Authorization": f"Bearer {crowd['tokens']['ADMIN']}"}
    payload = {"query": REFINE, "variables": {"f": {}}}
    counter.reset()
    r = await both[0].post("/graphql", json=payload, headers=headers)
    assert orjson.loads(r.content)["data"]["customerSearch"]["__typename"] == "RefineSearch"
    assert counter.count == 2, counter.statements  # the token lookup + the answer
