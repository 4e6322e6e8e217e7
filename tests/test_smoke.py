"""The service answers: health check, GraphiQL, a customer read."""

from tests.factories import make_customer


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_graphiql_page(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_customer_by_number(gql, engine):
    row = await make_customer(engine, email="ada@example.com")
    data = await gql.data(
        "query($n: String!) { customer(number: $n) { id number firstName email displayName } }",
        {"n": row.number},
    )
    assert data["customer"]["number"] == row.number
    assert data["customer"]["email"] == "ada@example.com"
    assert data["customer"]["displayName"] == "Ada Lovelace"
