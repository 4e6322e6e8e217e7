// GraphiQL with no internet: every request that leaves 127.0.0.1 is refused, then the page
// must render, introspect, and run its example query with a token typed into the Headers tab.
// Run with tests/browser/run.sh (it starts `customer-graph serve --demo` and passes BASE/TOKEN).
import { chromium } from "playwright-core";

const base = process.env.BASE ?? "http://127.0.0.1:8765";
const token = process.env.TOKEN;
const shot = process.env.SCREENSHOT ?? "graphiql-offline.png";
if (!token) throw new Error("TOKEN is required");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const refused = [];
const local = [];
await context.route("**/*", (route) => {
  const url = new URL(route.request().url());
  if (url.hostname === "127.0.0.1" || url.protocol === "data:") {
    local.push(url.pathname);
    return route.continue();
  }
  refused.push(url.href);
  return route.abort("internetdisconnected");
});
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
page.on("pageerror", (e) => consoleErrors.push(String(e)));

const introspected = page.waitForResponse(
  (r) => r.url().endsWith("/graphql") && r.request().method() === "POST" &&
    (r.request().postData() ?? "").includes("__schema"), { timeout: 30000 });
await page.goto(`${base}/graphql`, { waitUntil: "load" });
await page.waitForSelector(".graphiql-container", { timeout: 30000 });
const schema = await (await introspected).json();
if (!schema.data?.__schema) throw new Error("introspection failed: " + JSON.stringify(schema).slice(0, 300));

// The Headers tab: replace the template with the token.
await page.getByRole("button", { name: /^headers$/i }).click();
const headersEditor = page.locator(".graphiql-editor-tool .graphiql-editor").last();
await headersEditor.click();
await page.keyboard.press("Control+A");
await page.keyboard.press("Delete");
await page.keyboard.insertText(`{"Authorization": "Bearer ${token}"}`);

const ran = page.waitForResponse(
  (r) => r.url().endsWith("/graphql") && (r.request().postData() ?? "").includes("CustomerPage"),
  { timeout: 30000 });
await page.locator(".graphiql-execute-button").click();
const result = await (await ran).json();
await page.waitForFunction(
  () => document.querySelector(".graphiql-response")?.textContent.includes("totalCount"),
  null, { timeout: 30000 });
await page.screenshot({ path: shot });
await browser.close();

const customers = result.data?.customers;
console.log(JSON.stringify({
  title: "customer-graph",
  introspectedTypes: schema.data.__schema.types.length,
  totalCount: customers?.totalCount,
  rows: customers?.edges?.length,
  errors: result.errors ?? null,
  localRequests: local.length,
  refused,
  consoleErrors,
  screenshot: shot,
}, null, 2));
if (refused.length || !customers?.edges?.length || result.errors) process.exit(1);
