"""Sign-up, sign-in, bearer tokens: expiry, revocation, wrong, missing, wrong scheme; CLI."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from resolvers.tokens import hash_token
from tests.conftest import GraphQLClient
from tests.factories import make_customer, make_user

REGISTER = """mutation($input: RegisterUserInput!) { registerUser(input: $input) {
  token user { email role } customer { number email firstName }
  userErrors { field code message } } }"""
LOGIN = """mutation($input: LoginInput!) { login(input: $input) {
  token user { email } userErrors { field code message } } }"""
ME = "{ me { user { email role } customer { number } } }"


def codes(body) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_register_creates_user_and_customer_then_login(client):
    anon = GraphQLClient(client)
    data = await anon.data(
        REGISTER,
        {
            "input": {
                "email": "new@shop.test",
                "password": "correct horse",
                "firstName": "New",
                "lastName": "Buyer",
            }
        },
    )
    result = data["registerUser"]
    assert result["userErrors"] == []
    assert result["user"] == {"email": "new@shop.test", "role": "CUSTOMER"}
    assert result["customer"]["email"] == "new@shop.test"
    me = await GraphQLClient(client, result["token"]).data(ME)
    assert me["me"]["customer"]["number"] == result["customer"]["number"]

    login = await anon.data(
        LOGIN, {"input": {"email": "NEW@shop.test", "password": "correct horse"}}
    )
    assert login["login"]["userErrors"] == [] and login["login"]["token"]
    wrong = await anon.data(LOGIN, {"input": {"email": "new@shop.test", "password": "nope"}})
    assert wrong["login"] == {
        "token": None,
        "user": None,
        "userErrors": [
            {"field": ["input"], "code": "INVALID", "message": "Wrong email or password."}
        ],
    }
    unknown = await anon.data(LOGIN, {"input": {"email": "who@shop.test", "password": "nope"}})
    assert unknown["login"]["userErrors"] == wrong["login"]["userErrors"]


async def test_register_attaches_to_a_known_customer(client, engine):
    known = await make_customer(engine, email="known@shop.test", first_name="Known")
    data = await GraphQLClient(client).data(
        REGISTER,
        {
            "input": {
                "email": "known@shop.test",
                "password": "long enough!",
                "firstName": "K",
                "lastName": "N",
            }
        },
    )
    assert data["registerUser"]["customer"]["number"] == known.number


async def test_register_refuses_duplicates_and_bad_input(client, engine):
    anon = GraphQLClient(client)
    payload = {
        "email": "dup@shop.test",
        "password": "long enough!",
        "firstName": "A",
        "lastName": "B",
    }
    await anon.data(REGISTER, {"input": payload})
    again = await anon.data(REGISTER, {"input": payload})
    assert again["registerUser"]["userErrors"][0]["code"] == "DUPLICATE"
    assert again["registerUser"]["userErrors"][0]["field"] == ["input", "email"]
    bad = await anon.data(REGISTER, {"input": {**payload, "email": "nope", "password": "short"}})
    assert sorted(e["field"][1] for e in bad["registerUser"]["userErrors"]) == ["email", "password"]
    async with engine.connect() as conn:
        users = (await conn.execute(text("SELECT count(*) FROM app_user"))).scalar()
        stored = (await conn.execute(text("SELECT password_hash FROM app_user"))).scalar()
    assert users == 1 and stored.startswith("$argon2") and "long enough" not in stored


@pytest.mark.parametrize(
    "header,message",
    [
        (None, "Sign in"),
        ("Bearer cg_not-a-real-token", "unknown, expired or revoked"),
        ("Basic dXNlcjpwdw==", "Bearer"),
        ("Bearer ", "Sign in"),
    ],
)
async def test_bad_credentials_are_unauthenticated(client, header, message):
    headers = {"Authorization": header} if header is not None else {}
    response = await client.post("/graphql", json={"query": ME}, headers=headers)
    body = response.json()
    assert codes(body) == ["UNAUTHENTICATED"]
    assert message in body["errors"][0]["message"]


async def test_expired_and_revoked_tokens(client, engine):
    _, token = await make_user(engine, role="ADMIN", email="boss@example.com")
    as_boss = GraphQLClient(client, token)
    assert (await as_boss.data(ME))["me"]["user"]["email"] == "boss@example.com"
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE api_token SET expires_at = :t WHERE token_hash = :h"),
            {"t": datetime.now(UTC) - timedelta(seconds=1), "h": hash_token(token)},
        )
    assert codes(await as_boss(ME)) == ["UNAUTHENTICATED"]

    _, token2 = await make_user(engine, role="ADMIN", email="boss2@example.com")
    from resolvers.tokens import revoke

    assert await revoke(engine, token2) is True
    assert codes(await GraphQLClient(client, token2)(ME)) == ["UNAUTHENTICATED"]
    assert await revoke(engine, token2) is False


async def test_tokens_are_stored_hashed(engine):
    _, token = await make_user(engine, role="ADMIN", email="h@example.com")
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM api_token"))).scalar()
    assert stored == hash_token(token) and token.encode() not in stored


async def test_anonymous_may_only_register_login_and_introspect(client):
    anon = GraphQLClient(client)
    data = await anon.data("{ __schema { queryType { name } } __typename }")
    assert data["__schema"]["queryType"]["name"] == "Query"
    for query in (
        "{ customers { totalCount } }",
        '{ node(id: "Q3VzdG9tZXI6MQ==") { id } }',
        "{ salesChannels { code } }",
        "{ duplicateCustomers { totalCount } }",
        "mutation { duplicateDismiss(input: {customerIds: []}) { dismissedPairs } }",
    ):
        assert codes(await anon(query)) == ["UNAUTHENTICATED"], query


async def test_customer_role_cannot_use_staff_mutations(client, engine):
    user_id, token = await make_user(engine, role="CUSTOMER", email="site@example.com")
    own = await make_customer(engine, user_id=user_id)
    other = await make_customer(engine, first_name="Other")
    import base64

    ids = [base64.b64encode(f"Customer:{c.id}".encode()).decode() for c in (own, other)]
    data = await GraphQLClient(client, token).data(
        "mutation($ids: [ID!]!) { duplicateDismiss(input: {customerIds: $ids}) {"
        " userErrors { code } } }",
        {"ids": ids},
    )
    assert data["duplicateDismiss"]["userErrors"] == [{"code": "FORBIDDEN"}]


async def test_cli_user_create_and_token_revoke(database_url, engine, client, monkeypatch, capsys):
    from server.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)

    def cli(*argv: str) -> int:  # the CLI runs its own event loop: give it a thread
        return main(list(argv))

    assert (
        await asyncio.to_thread(
            cli, "user", "create", "--email", "cli@example.com", "--role", "SALES_REP"
        )
        == 0
    )
    token = capsys.readouterr().out.strip().splitlines()[-1]
    as_cli = GraphQLClient(client, token)
    assert (await as_cli.data(ME))["me"]["user"]["role"] == "SALES_REP"
    assert await asyncio.to_thread(cli, "token", "revoke", token) == 0
    assert codes(await as_cli(ME)) == ["UNAUTHENTICATED"]
    assert await asyncio.to_thread(cli, "token", "revoke", token) == 1
