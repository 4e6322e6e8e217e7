"""The GraphiQL page at GET /graphql, with every asset served by this service.

Strawberry's stock page loads React and GraphiQL from unpkg.com: offline, on an intranet
or behind a strict proxy it never gets past "Loading...". Ours loads the vendored files
in server/static/graphiql/ (versions and licences in its README.md) from /graphiql/, opens
on a query that returns data on the demo database, and says where the token goes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "graphiql"
ASSETS_PATH = "/graphiql"

EXAMPLE_QUERY = """\
# customer-graph: GraphiQL
#
# Every request needs a token. Open the Headers tab
# below and put:
#
#   {"Authorization": "Bearer <token>"}
#
# `customer-graph serve --demo` printed an admin token;
# `customer-graph user create --email E --role ADMIN`
# makes another. Subscriptions (customerTimeline,
# timelineEvents) send the same header over the
# WebSocket. Ctrl-Enter runs, Ctrl-Space completes.
#
# The nested customer page: one SQL statement,
# however deep it goes.
query CustomerPage($after: String) {
  customers(
    first: 10
    after: $after
    orderBy: {field: NAME, direction: ASC}
  ) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id number displayName email phone status
        account {
          number name
          paymentMethods { brand last4 expMonth expYear }
        }
        salesRep { displayName }
        addresses {
          kind isDefault line1 city region postalCode country
        }
        orders(first: 3) {
          totalCount
          edges { node { number status placedAt total { amount currency } } }
        }
        ledgerTransactions(first: 3) {
          edges {
            node { kind amount { amount currency } balanceAfter { amount } }
          }
        }
        balances { amount currency }
        timeline(first: 3) { edges { node { kind occurredAt summary } } }
      }
    }
  }
}
"""

DEFAULT_HEADERS = '{\n  "Authorization": "Bearer "\n}'

_PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>customer-graph</title>
    <link rel="icon" href="data:,">
    <style>
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; display: flex; }}
    </style>
    <link rel="stylesheet" href="{assets}/graphiql.min.css">
    <link rel="stylesheet" href="{assets}/plugin-explorer.css">
    <script src="{assets}/react.production.min.js"></script>
    <script src="{assets}/react-dom.production.min.js"></script>
    <script src="{assets}/graphiql.min.js"></script>
    <script src="{assets}/plugin-explorer.umd.js"></script>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script id="example-query" type="application/json">{query}</script>
    <script id="default-headers" type="application/json">{headers}</script>
    <script>
      const url = window.location.href.split("?")[0];
      const ws = new URL(url);
      ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
      // The Headers tab's JSON goes with every request and, for subscriptions, as the
      // graphql-transport-ws connection_init payload (the server reads Authorization there).
      const fetcher = GraphiQL.createFetcher({{ url, subscriptionUrl: ws.toString() }});
      const params = new URLSearchParams(window.location.search);
      const example = JSON.parse(document.getElementById("example-query").textContent);
      const headers = JSON.parse(document.getElementById("default-headers").textContent);
      const explorer = GraphiQLPluginExplorer.explorerPlugin();
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {{
          fetcher,
          plugins: [explorer],
          defaultQuery: example,
          query: params.get("query") || undefined,
          variables: params.get("variables") || undefined,
          defaultHeaders: headers,
          defaultEditorToolsVisibility: "headers",
          isHeadersEditorEnabled: true,
          shouldPersistHeaders: true,
          inputValueDeprecation: true,
        }}),
      );
    </script>
  </body>
</html>
"""


def _script_json(value: str) -> str:
    # JSON inside <script>: "</" would end the element early.
    return json.dumps(value).replace("</", "<\\/")


def page(assets: str = ASSETS_PATH) -> str:
    return _PAGE.format(
        assets=html.escape(assets, quote=True),
        query=_script_json(EXAMPLE_QUERY),
        headers=_script_json(DEFAULT_HEADERS),
    )


PAGE = page()


def assets_app() -> StaticFiles:
    return StaticFiles(directory=ASSETS)
