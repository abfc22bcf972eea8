// The "Sign in with <provider>" button in Debian's Chromium, driven by playwright-core.
// Run by tests/oidc/test_browser.py against mailroom and a test OpenID Connect provider:
//   MAILROOM_URL=http://127.0.0.1:PORT PROVIDER_URL=http://127.0.0.1:PORT2 node e2e/oidc.mjs
// Prints "ok <name>" per step; exit code 1 on the first failure.
import { chromium } from "playwright-core";

const BASE = process.env.MAILROOM_URL;
const PROVIDER = process.env.PROVIDER_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
if (!BASE || !PROVIDER) throw new Error("set MAILROOM_URL and PROVIDER_URL");
const T = 15000;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const problems = [];

async function signIn(path, username, landmark) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));
  page.on("response", (r) => r.status() >= 400 && problems.push(`${r.status()} for ${r.url()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(BASE) && !url.startsWith(PROVIDER) && !url.startsWith("data:")) {
      problems.push(`request to another origin: ${url}`);
    }
  });
  await page.goto(BASE + path);
  const button = page.getByTestId("login-oidc");
  await button.waitFor({ timeout: T });
  const text = await button.textContent();
  if (text.trim() !== "Sign in with Test IdP") throw new Error(`the button says ${text}`);
  await button.click();
  await page.waitForURL((u) => u.toString().startsWith(PROVIDER), { timeout: T });
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', "provider-password");
  await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.toString().startsWith(BASE + path), { timeout: T });
  await page.locator(landmark).waitFor({ timeout: T });
  const url = page.url();
  if (url.includes("code=") || url.includes("ms_")) throw new Error(`a secret is left in the URL: ${url}`);
  const readable = await page.evaluate(() => document.cookie + JSON.stringify({ ...localStorage }));
  if (readable.includes("ms_")) throw new Error("the session token is readable by the page");
  await context.close();
}

async function step(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack || e}`);
    if (problems.length) console.log(problems.join("\n"));
    await browser.close();
    process.exit(1);
  }
}

await step("webmail: sign in with the provider", () =>
  signIn("/", "alice", '[data-testid="label-item"][data-label="inbox"]'));
await step("admin console: sign in with the provider (admin group)", () =>
  signIn("/admin", "root", '[data-testid="nav-domains"]'));
await step("no console errors or other-origin requests", async () => {
  if (problems.length) throw new Error(problems.join("\n"));
});
await browser.close();
