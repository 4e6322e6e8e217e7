"""The command line for staff users and tokens, run against the test database."""

from __future__ import annotations

from base64 import b64decode

import pytest

from tests.conftest import GraphQLClient
from tests.factories import make_customer

ME = "{ me { user { email role } } }"
LOGIN = """mutation($input: LoginInput!) { login(input: $input) {
  token userErrors { code } } }"""
CUSTOMER = "query($n: String!) { customer(number: $n) { salesRep { email } } }"


def codes(body) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_no_arguments_prints_help_and_version_exists(cli):
    code, out, _ = await cli()
    assert code == 0
    for command in ("serve", "migrate", "seed", "user", "token"):
        assert command in out
    with pytest.raises(SystemExit) as version:
        await cli("--version")
    assert version.value.code == 0


async def test_user_create_prints_only_the_token_and_refuses_a_second_one(cli, client):
    code, out, err = await cli("user", "create", "--email", "rep@example.com", "--role", "ADMIN")
    assert code == 0
    token = out.strip()
    assert token.startswith("cg_") and "\n" not in token  # stdout is the token alone
    assert "shown once" in err
    assert "alembic" not in err and "setup plugin" not in err and "Context impl" not in err
    assert (await GraphQLClient(client, token).data(ME))["me"]["user"]["email"] == "rep@example.com"

    code, out, err = await cli("user", "create", "--email", "REP@example.com", "--role", "ADMIN")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "already exists" in err
    assert "SQL" not in err and "Traceback" not in err


async def test_token_create_list_and_revoke_all(cli, client):
    await cli("user", "create", "--email", "ops@example.com", "--role", "ADMIN")
    code, out, _ = await cli("token", "create", "--email", "ops@example.com", "--days", "7")
    assert code == 0
    second = out.strip()
    assert (await GraphQLClient(client, second).data(ME))["me"]["user"]["role"] == "ADMIN"

    code, out, _ = await cli("user", "list")
    line = next(row for row in out.splitlines() if "ops@example.com" in row)
    assert line.split()[-1] == "2"  # live tokens

    code, _, err = await cli("token", "revoke", "--email", "ops@example.com")
    assert code == 1 and "--all" in err  # a mass revocation is confirmed
    code, _, err = await cli("token", "revoke", "--email", "ops@example.com", "--all")
    assert code == 0 and "revoked 2" in err
    assert codes(await GraphQLClient(client, second)(ME)) == ["UNAUTHENTICATED"]

    code, _, err = await cli("token", "create", "--email", "nobody@example.com")
    assert code == 1 and "no user" in err


async def test_deactivate_revokes_tokens_and_keeps_the_reps_customers(cli, client, engine, gql):
    code, out, _ = await cli("user", "create", "--email", "rita@example.com", "--role", "SALES_REP")
    token = out.strip()
    rep = GraphQLClient(client, token)
    me = await rep.data("{ me { user { id } } }")
    rep_id = int(b64decode(me["me"]["user"]["id"]).decode().split(":")[1])
    customer = await make_customer(engine, sales_rep_id=rep_id)

    code, _, err = await cli("user", "deactivate", "--email", "rita@example.com")
    assert code == 0 and "1 token(s) revoked" in err
    assert codes(await rep(ME)) == ["UNAUTHENTICATED"]
    kept = await gql.data(CUSTOMER, {"n": customer.number})
    assert kept["customer"]["salesRep"]["email"] == "rita@example.com"
    code, _, err = await cli("token", "create", "--email", "rita@example.com")
    assert code == 1 and "deactivated" in err


async def test_set_password_lets_staff_log_in(cli, client):
    await cli("user", "create", "--email", "boss@example.com", "--role", "ADMIN")
    anon = GraphQLClient(client)
    login = {"input": {"email": "boss@example.com", "password": "a long passphrase"}}
    before = await anon.data(LOGIN, login)
    assert before["login"]["userErrors"] == [{"code": "INVALID"}]

    code, _, err = await cli("user", "set-password", "--email", "boss@example.com", stdin="short\n")
    assert code == 1 and "10 characters" in err
    code, _, _ = await cli(
        "user", "set-password", "--email", "boss@example.com", stdin="a long passphrase\n"
    )
    assert code == 0
    after = await anon.data(LOGIN, login)
    assert after["login"]["userErrors"] == []
    token = after["login"]["token"]
    assert (await GraphQLClient(client, token).data(ME))["me"]["user"][
        "email"
    ] == "boss@example.com"


async def test_seed_reset_says_users_go_and_prints_a_new_admin_token(cli, client):
    await cli("user", "create", "--email", "gone@example.com", "--role", "ADMIN")
    code, out, err = await cli("seed", "--customers", "5", "--reset")
    assert code == 0
    assert "removed every user and token" in err
    token = out.strip().splitlines()[-1]
    me = await GraphQLClient(client, token).data(ME)
    assert me["me"]["user"] == {"email": "admin@demo.example", "role": "ADMIN"}


async def test_token_budget_is_set_and_cleared(cli, engine):
    from sqlalchemy import text

    await cli("user", "create", "--email", "meter@example.com", "--role", "SALES_REP")
    code, out, _ = await cli(
        "token", "create", "--email", "meter@example.com", "--budget", "5000/50"
    )
    assert code == 0
    token = out.strip()

    async def stored() -> list[tuple]:
        async with engine.connect() as conn:
            query = "SELECT cost_budget, cost_restore_rate FROM api_token ORDER BY id"
            return [tuple(r) for r in await conn.execute(text(query))]

    assert (5000.0, 50.0) in await stored()
    code, out, _ = await cli("token", "budget", token, "800/4")
    assert code == 0 and out.strip() == "budget 800/4"
    assert (800.0, 4.0) in await stored()
    code, out, _ = await cli("token", "budget", token, "default")
    assert code == 0 and (800.0, 4.0) not in await stored()
    code, _, err = await cli("token", "budget", token, "800")
    assert code == 1 and "maximum/rate" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        await cli("token", "create", "--email", "meter@example.com", "--budget", "0/1")
    code, out, _ = await cli("token", "budget", "cg_unknown", "10/1")
    assert code == 1 and "no such active token" in out
