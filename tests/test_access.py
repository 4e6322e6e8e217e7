"""The access matrix: every role tries to reach everyone's objects by every path.

World: two sales reps (A, B) and two site users (X, Y); X's customer belongs to rep A, Y's
to rep B; each customer has an order (with a line), an address, a ledger entry, a timeline
event, a tax certificate, and an account with a payment method. Expected: ADMIN sees all;
a rep and a site user see exactly their own customer's family; anonymous gets
UNAUTHENTICATED. Out of scope must look like missing: null, never an error.
"""

from tests.conftest import GraphQLClient, gid
from tests.factories import (
    make_account,
    make_address,
    make_certificate,
    make_customer,
    make_event,
    make_ledger,
    make_order,
    make_payment_method,
    make_user,
)

# Every test here runs on the compiled read path and field by field (tests/conftest.py).
BOTH_PATHS = True

NODE_TYPES = (
    "Customer",
    "Order",
    "OrderLine",
    "Address",
    "LedgerTransaction",
    "TimelineEvent",
    "TaxExemptionCertificate",
    "Account",
    "PaymentMethod",
)
# Paths from a child back to its customer (or an account's customers).
BACK_PATHS = {
    "Order": "... on Order { customer { number } }",
    "Address": "... on Address { customer { number } }",
    "LedgerTransaction": "... on LedgerTransaction { customer { number } }",
    "TimelineEvent": "... on TimelineEvent { customer { number } }",
    "TaxExemptionCertificate": "... on TaxExemptionCertificate { customer { number } }",
    "Account": "... on Account { customers { number } }",
}


async def family(engine, label: str, rep_id: int, user_id: int) -> dict:
    account = await make_account(engine, name=f"Account {label}")
    customer = await make_customer(
        engine,
        first_name=label,
        email=f"{label.lower()}@example.com",
        sales_rep_id=rep_id,
        user_id=user_id,
        account_id=account.id,
    )
    order = await make_order(engine, customer.id, lines=1)
    async with engine.connect() as conn:
        from sqlalchemy import text

        line_id = (
            await conn.execute(
                text("SELECT id FROM order_line WHERE order_id = :o"), {"o": order.id}
            )
        ).scalar()
    ids = {
        "Customer": customer.id,
        "Order": order.id,
        "OrderLine": line_id,
        "Address": (await make_address(engine, customer.id)).id,
        "LedgerTransaction": (await make_ledger(engine, customer.id, ["9.99"]))[0].id,
        "TimelineEvent": (await make_event(engine, customer.id)).id,
        "TaxExemptionCertificate": (await make_certificate(engine, customer.id)).id,
        "Account": account.id,
        "PaymentMethod": (await make_payment_method(engine, account.id)).id,
    }
    return {
        "ids": ids,
        "number": customer.number,
        "email": customer.email,
        "order_number": order.number,
    }


async def test_access_matrix(client, engine, admin_token):
    rep_a, token_a = await make_user(engine, role="SALES_REP", email="a@reps.test")
    rep_b, token_b = await make_user(engine, role="SALES_REP", email="b@reps.test")
    user_x, token_x = await make_user(engine, role="CUSTOMER", email="x@users.test")
    user_y, token_y = await make_user(engine, role="CUSTOMER", email="y@users.test")
    worlds = {
        "X": await family(engine, "X", rep_a, user_x),
        "Y": await family(engine, "Y", rep_b, user_y),
    }
    roles = {  # role -> (token, families it may see)
        "ADMIN": (admin_token, {"X", "Y"}),
        "REP_A": (token_a, {"X"}),
        "REP_B": (token_b, {"Y"}),
        "USER_X": (token_x, {"X"}),
        "USER_Y": (token_y, {"Y"}),
        "ANONYMOUS": (None, set()),
    }
    failures: list[str] = []
    cases = 0

    async def check(
        role: str, label: str, query: str, variables: dict, expect_visible: bool, extract
    ) -> None:
        nonlocal cases
        cases += 1
        token, _ = roles[role]
        body = await GraphQLClient(client, token)(query, variables)
        if role == "ANONYMOUS":
            codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
            if not codes or set(codes) != {"UNAUTHENTICATED"}:
                failures.append(f"{role} {label}: expected UNAUTHENTICATED, got {body}")
            return
        if "errors" in body:
            failures.append(f"{role} {label}: errors {body['errors']}")
            return
        visible = extract(body["data"])
        if visible != expect_visible:
            failures.append(f"{role} {label}: visible={visible}, expected {expect_visible}")

    for role, (_, sees) in roles.items():
        for owner, world in worlds.items():
            allowed = owner in sees
            number = world["number"]
            for type_name in NODE_TYPES:
                node_id = gid(type_name, world["ids"][type_name])
                await check(
                    role,
                    f"node({type_name} of {owner})",
                    "query($id: ID!) { node(id: $id) { id } }",
                    {"id": node_id},
                    allowed,
                    lambda d: d["node"] is not None,
                )
                await check(
                    role,
                    f"nodes([{type_name} of {owner}])",
                    "query($id: ID!) { nodes(ids: [$id]) { id } }",
                    {"id": node_id},
                    allowed,
                    lambda d: d["nodes"] != [None],
                )
                if type_name in BACK_PATHS:
                    # Nested path back to the customer: never a customer of another scope.
                    await check(
                        role,
                        f"{type_name} of {owner} -> customer",
                        f"query($id: ID!) {{ node(id: $id) {{ {BACK_PATHS[type_name]} }} }}",
                        {"id": node_id},
                        allowed,
                        lambda d, n=number: d["node"] is not None and n in str(d["node"]),
                    )
            for label, args in (
                ("customer(id)", {"id": gid("Customer", world["ids"]["Customer"])}),
                ("customer(number)", {"number": number}),
                ("customer(email)", {"email": world["email"]}),
            ):
                await check(
                    role,
                    f"{label} of {owner}",
                    "query($id: ID, $number: String, $email: String) {"
                    " customer(id: $id, number: $number, email: $email) { number } }",
                    args,
                    allowed,
                    lambda d: d["customer"] is not None,
                )
            for label, args in (
                ("order(id)", {"id": gid("Order", world["ids"]["Order"])}),
                ("order(number)", {"number": world["order_number"]}),
            ):
                await check(
                    role,
                    f"{label} of {owner}",
                    "query($id: ID, $number: String) { order(id: $id, number: $number) {"
                    " number customer { number } } }",
                    args,
                    allowed,
                    lambda d: d["order"] is not None,
                )
            await check(
                role,
                f"customers list has {owner}",
                "{ customers(first: 100) { totalCount edges { node { number } } } }",
                {},
                allowed,
                lambda d, n=number: n in str(d["customers"]),
            )
            await check(
                role,
                f"accounts list has {owner}",
                "{ accounts(first: 100) { edges { node { name customers { number } } } } }",
                {},
                allowed,
                lambda d, o=owner: f"Account {o}" in str(d["accounts"]),
            )
            await check(
                role,
                f"duplicate report shows {owner}",
                "{ duplicateCustomers(by: [NAME]) { edges { node { keys } } } }",
                {},
                False,
                lambda d: d["duplicateCustomers"]["edges"] != [],
            )
        await check(
            role,
            "customers totalCount",
            "{ customers { totalCount } }",
            {},
            True,
            lambda d, s=sees: d["customers"]["totalCount"] == len(s),
        )
    # Site users see themselves through `me`.
    for role in ("USER_X", "USER_Y"):
        await check(
            role,
            "me.customer",
            "{ me { customer { number } } }",
            {},
            True,
            lambda d, r=role: d["me"]["customer"]["number"] == worlds[r[-1]]["number"],
        )
    assert not failures, f"{len(failures)} of {cases} cases leak or fail:\n" + "\n".join(failures)
    assert cases >= 250, cases
    print(f"access matrix: {cases} cases")


async def test_reps_do_not_see_other_reps_site_users(client, engine):
    rep_a, token_a = await make_user(engine, role="SALES_REP", email="a@reps.test")
    rep_b, _ = await make_user(engine, role="SALES_REP", email="b@reps.test")
    user_x, _ = await make_user(engine, role="CUSTOMER", email="x@users.test")
    user_y, _ = await make_user(engine, role="CUSTOMER", email="y@users.test")
    await make_customer(engine, email="x@example.com", sales_rep_id=rep_a, user_id=user_x)
    await make_customer(engine, email="y@example.com", sales_rep_id=rep_b, user_id=user_y)
    as_rep = GraphQLClient(client, token_a)
    ids = [gid("User", pk) for pk in (rep_b, user_x, user_y)]
    data = await as_rep.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on User { email } } }", {"ids": ids}
    )
    assert data["nodes"] == [{"email": "b@reps.test"}, {"email": "x@users.test"}, None]
