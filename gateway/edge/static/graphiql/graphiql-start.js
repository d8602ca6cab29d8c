// Starts GraphiQL on the gateway's own page (gateway/edge/graphiql.py). A file of its own,
// not an inline script, so that the page's Content-Security-Policy needs only 'self'.
(function () {
  "use strict";

  // Requests go to the address the page came from; subscriptions to the same over WebSocket.
  var url = window.location.href.split(/[?#]/)[0];
  var subscriptionUrl = url.replace(/^http/, "ws");

  // Shown in the headers pane until the user writes their own (GraphiQL keeps them).
  var DEFAULT_HEADERS = JSON.stringify(
    {
      Authorization: "Bearer gw_…",
      "X-Road-Issue": "inquiry-1403-000123",
      "X-Gateway-Debug": "cost",
    },
    null,
    2
  );

  var DEFAULT_QUERY = [
    "# The municipal integration gateway. In the Headers pane below:",
    "#   Authorization: Bearer gw_… (a key `make run` printed;",
    "#     without one you ask as the public),",
    "#   X-Road-Issue: the case you work on,",
    "#   X-Gateway-Debug: cost, to see what a query costs,",
    "#   Accept-Language: fa, for errors in Persian.",
    "",
    "query FirstParcels {",
    "  parcels(first: 2) {",
    "    edges {",
    "      node {",
    "        renewalCode",
    "        address",
    "        dues { outstanding }",
    "      }",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");

  var fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: subscriptionUrl });
  // Headers the pane holds that are not real ones (the placeholder key) are left out, so that
  // the first run works without a key instead of failing authentication.
  function cleanHeaders(headers) {
    var sent = {};
    Object.keys(headers || {}).forEach(function (name) {
      var value = headers[name];
      if (typeof value === "string" && value.indexOf("…") === -1) {
        sent[name] = value;
      }
    });
    return sent;
  }
  function gatewayFetcher(params, options) {
    var opts = Object.assign({}, options || {});
    opts.headers = cleanHeaders(opts.headers);
    return fetcher(params, opts);
  }

  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  function App() {
    return React.createElement(GraphiQL, {
      fetcher: gatewayFetcher,
      plugins: [explorer],
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(App));
})();
