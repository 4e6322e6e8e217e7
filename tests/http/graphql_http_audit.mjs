// graphql-over-http conformance: npm graphql-http's auditServer against URL (with TOKEN as a
// bearer token when given). Run by tests/http/run_audit.sh.
import { auditServer } from "graphql-http";
const url = process.env.URL ?? "http://127.0.0.1:8010/graphql";
const token = process.env.TOKEN;
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers ?? {});
  if (token) headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn });
const count = {};
for (const r of results) {
  const level = r.name.split(" ")[0];
  const key = `${level} ${r.status}`;
  count[key] = (count[key] ?? 0) + 1;
  if (r.status !== "ok") console.log(`${r.status.toUpperCase()} ${r.name}${r.reason ? ": " + r.reason : ""}`);
}
console.log(JSON.stringify(count));
