// The graphql-http server audit (GraphQL over HTTP conformance) against a running gateway,
// with an API key: `GATEWAY_URL=http://127.0.0.1:8000/graphql GATEWAY_API_KEY=gw_… npm run
// audit-server`. Prints one JSON line per audit ({id, name, status, reason}); exits 1 when
// any audit is an error or a warning.
import { auditServer } from "graphql-http";

const url = process.env.GATEWAY_URL ?? "http://127.0.0.1:8000/graphql";
const key = process.env.GATEWAY_API_KEY;

function fetchWithKey(input, init = {}) {
  const headers = new Headers(init.headers);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithKey });
let failed = 0;
for (const result of results) {
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") {
    line.reason = result.reason;
    if (result.status !== "notice") failed += 1;
  }
  console.log(JSON.stringify(line));
}
process.exit(failed ? 1 : 0);
