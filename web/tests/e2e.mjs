// End-to-end test of the console in a real browser (Debian's Chromium,
// driven by playwright-core).
//
//   node tests/e2e.mjs '<json>'
//
// where <json> is {"page": REST URL that serves the console,
//                  "brokers": [{"name", "grpc": gRPC URL, "rest": REST URL}],
//                  "secured": {"name", "grpc", "rest", "token"} (optional),
//                  "artifacts": a directory for screenshots}.
// For each broker the page (always loaded from `page`, so the calls are
// cross-origin) creates a topic, tails it, publishes three messages and sees
// them in order, sees a consumer's lag grow, keeps up with a burst, shows an
// error as its gRPC code and message, and deletes the topic. Against the
// `secured` broker (authentication on) it is refused without a token and with
// a wrong one, then connects with the token and creates a topic.
// Exits non-zero on the first failure; prints one line per step.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const BURST = 2000;
const MAX_ROWS = 500;

const config = JSON.parse(process.argv[2] ?? "null");
if (!config?.page || !Array.isArray(config.brokers) || !config.artifacts) {
  console.error("usage: node tests/e2e.mjs '{\"page\":..., \"brokers\":[...], \"artifacts\":...}'");
  process.exit(2);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function step(text) {
  console.log(`  ${text}`);
}

/** A call to the broker's REST API from the test itself (with its token, if it has one). */
async function rest(broker, method, path, body) {
  const headers = body === undefined ? {} : { "content-type": "application/json" };
  if (broker.token) headers.authorization = `Bearer ${broker.token}`;
  const response = await fetch(`${broker.rest}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}

async function consumerLag(page, id) {
  await page.getByRole("button", { name: "Refresh" }).nth(1).click();
  const cell = page.locator(`#consumers-table tr[data-consumer="${id}"] td:nth-child(4)`);
  await cell.waitFor();
  return cell;
}

async function scenario(context, broker, index) {
  console.log(`console against ${broker.name}: page ${config.page}, broker ${broker.grpc}`);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("dialog", (dialog) => void dialog.accept());
  const grpcWeb = [];
  const elsewhere = [];
  page.on("request", (request) => {
    const url = request.url();
    if (url.startsWith(broker.grpc)) {
      if (request.method() === "POST") grpcWeb.push(request.headers()["content-type"]);
    } else if (!url.startsWith(`${config.page}/console/`) && url !== `${config.page}/?broker=${encodeURIComponent(broker.grpc)}`) {
      elsewhere.push(`${request.method()} ${url}`);
    }
  });

  const topic = `console-e2e-${index}-${Date.now()}`;
  await page.goto(`${config.page}/?broker=${encodeURIComponent(broker.grpc)}`);
  await page.locator("#status", { hasText: `Connected to ${broker.grpc}` }).waitFor();
  check((await page.getByLabel("Broker gRPC URL").inputValue()) === broker.grpc, "the broker URL comes from ?broker=");
  step("loaded, connected over grpc-web");

  // Create a topic, with the keyboard.
  await page.getByLabel("New topic").fill(topic);
  await page.getByLabel("New topic").press("Enter");
  const topicRow = page.locator(`#topics-table tr[data-topic="${topic}"]`);
  await topicRow.waitFor();
  await page.locator("#topic-name", { hasText: topic }).waitFor();
  check((await rest(broker, "GET", `/v1/topics/${topic}`)).status === 200, "the topic exists on the broker");
  step(`created topic ${topic}`);

  // A consumer, created by the test, at the earliest offset.
  const created = await rest(broker, "POST", `/v1/topics/${topic}/consumers`, { consumerId: "audit" });
  check(created.status === 200, `create consumer: ${JSON.stringify(created)}`);
  const lag = await consumerLag(page, "audit");
  check((await lag.textContent()) === "0", `lag before publishing: ${await lag.textContent()}`);
  step("consumer audit: lag 0");

  // The live tail, from the earliest offset.
  await page.getByLabel("From").selectOption("earliest");
  await page.getByRole("button", { name: "Start" }).click();
  await page.locator("#tail-status", { hasText: "Tailing" }).waitFor();

  // Publish three messages.
  for (const [i, value] of ["first", "second", "third"].entries()) {
    await page.getByLabel("Key").fill(`k${i}`);
    await page.getByLabel("Value", { exact: true }).fill(value);
    await page.getByLabel("Headers").fill(`n: ${i}`);
    await page.getByRole("button", { name: "Publish" }).click();
    await page.locator("#publish-result", { hasText: `Published at offset ${i}.` }).waitFor();
  }
  // A value given as base64.
  await page.getByLabel("Base64").check();
  await page.getByLabel("Value", { exact: true }).fill(Buffer.from("fourth").toString("base64"));
  await page.getByLabel("Key").fill("");
  await page.getByLabel("Headers").fill("");
  await page.getByRole("button", { name: "Publish" }).click();
  await page.locator("#publish-result", { hasText: "Published at offset 3." }).waitFor();
  await page.getByLabel("Text (UTF-8)").check();
  step("published 4 messages from the form");

  const rows = page.locator("#tail-table tbody tr");
  await page.waitForFunction(() => document.querySelectorAll("#tail-table tbody tr").length >= 4);
  const seen = await rows.evaluateAll((trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)),
  );
  const wanted = [
    ["0", "k0", "first", "n: 0"],
    ["1", "k1", "second", "n: 1"],
    ["2", "k2", "third", "n: 2"],
    ["3", "", "fourth", ""],
  ];
  check(seen.length === 4, `tail rows: ${JSON.stringify(seen)}`);
  for (const [i, [offset, key, value, headers]] of wanted.entries()) {
    const [gotOffset, , gotKey, gotValue, gotHeaders] = seen[i];
    check(
      gotOffset === offset && gotKey === key && gotValue === value && gotHeaders === headers,
      `tail row ${i}: ${JSON.stringify(seen[i])}, wanted ${JSON.stringify(wanted[i])}`,
    );
  }
  step("the live tail shows them in order");

  const lagAfter = await consumerLag(page, "audit");
  await page.locator('#consumers-table tr[data-consumer="audit"] td:nth-child(4)', { hasText: /^4$/ }).waitFor();
  check((await lagAfter.textContent()) === "4", "lag after publishing");
  step("consumer audit: lag 4");
  if (index === 0) {
    const shot = join(config.artifacts, "console.png");
    await page.screenshot({ path: shot });
    console.log(`  screenshot: ${shot}`);
  }

  // A burst from a steady publisher: the page keeps only the newest rows
  // and stays responsive.
  for (let sent = 0; sent < BURST; sent += 200) {
    const records = Array.from({ length: 200 }, (_, i) => ({ value: Buffer.from(`burst ${sent + i}`).toString("base64") }));
    const published = await rest(broker, "POST", `/v1/topics/${topic}/messages`, { records });
    check(published.status === 200, `burst publish: ${JSON.stringify(published)}`);
  }
  const last = String(4 + BURST - 1);
  await page.locator(`#tail-table tbody tr[data-offset="${last}"]`).waitFor();
  const kept = await rows.count();
  check(kept === MAX_ROWS, `the tail keeps ${MAX_ROWS} rows, not ${kept}`);
  const firstKept = await rows.first().getAttribute("data-offset");
  check(firstKept === String(4 + BURST - MAX_ROWS), `the oldest row kept is ${firstKept}`);
  const started = Date.now();
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve())));
  step(`kept up with ${BURST} more messages (${kept} rows kept, a frame in ${Date.now() - started} ms)`);

  // An error: the topic exists already.
  await page.getByLabel("New topic").fill(topic);
  await page.getByRole("button", { name: "Create" }).click();
  await page.locator("#error").waitFor({ state: "visible" });
  const code = await page.locator("#error-code").textContent();
  const message = await page.locator("#error-message").textContent();
  check(code === "ALREADY_EXISTS", `error code: ${code}`);
  check(message.includes(topic), `error message: ${message}`);
  step(`an error reads ${code}: ${message}`);

  await page.getByRole("button", { name: "Dismiss" }).click();

  // Delete the topic.
  await page.getByRole("button", { name: "Stop" }).click();
  await page.getByRole("button", { name: `Delete topic ${topic}` }).click();
  await topicRow.waitFor({ state: "detached" });
  check(await page.locator("#topic").isHidden(), "the topic view closes");
  check((await rest(broker, "GET", `/v1/topics/${topic}`)).status === 404, "the topic is gone from the broker");
  step("deleted the topic");

  check(grpcWeb.length > 0 && grpcWeb.every((t) => t?.startsWith("application/grpc-web")), `calls: ${grpcWeb}`);
  check(elsewhere.length === 0, `requests other than grpc-web and the console's assets: ${elsewhere}`);
  check(problems.length === 0, problems.join("\n"));
  step(`${grpcWeb.length} grpc-web calls, nothing else`);
  await page.close();
}

/** The bearer token field against a broker with authentication on. */
async function secured(context, broker) {
  console.log(`console against ${broker.name}: broker ${broker.grpc}`);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  await page.goto(`${config.page}/?broker=${encodeURIComponent(broker.grpc)}`);
  await page.locator("#error-code", { hasText: "UNAUTHENTICATED" }).waitFor();
  step("without a token: UNAUTHENTICATED, shown as code and message");

  await page.getByLabel("Bearer token").fill("not-the-token");
  await page.getByRole("button", { name: "Connect" }).click();
  await page.locator("#error-code", { hasText: "UNAUTHENTICATED" }).waitFor();
  step("a wrong token: UNAUTHENTICATED");

  await page.getByLabel("Bearer token").fill(broker.token);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.locator("#status", { hasText: `Connected to ${broker.grpc}` }).waitFor();
  const topic = `console-secured-${Date.now()}`;
  await page.getByLabel("New topic").fill(topic);
  await page.getByLabel("New topic").press("Enter");
  await page.locator(`#topics-table tr[data-topic="${topic}"]`).waitFor();
  check((await rest(broker, "GET", `/v1/topics/${topic}`)).status === 200, "the topic exists on the broker");
  check(
    (await rest({ ...broker, token: undefined }, "GET", `/v1/topics/${topic}`)).status === 401,
    "the broker refuses calls without the token",
  );
  step("with the token: connected, created a topic");
  check(problems.length === 0, problems.join("\n"));
  await page.close();
}

const profile = await mkdtemp(join(tmpdir(), "gostream-console-"));
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(10_000);
  for (const [i, broker] of config.brokers.entries()) {
    await scenario(context, broker, i);
  }
  if (config.secured) await secured(context, config.secured);
  console.log("console e2e: passed");
} catch (error) {
  failed = true;
  console.error(`console e2e: FAILED: ${error?.stack ?? error}`);
} finally {
  await context?.close();
  await rm(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
