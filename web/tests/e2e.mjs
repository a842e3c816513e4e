// End-to-end test of the console in a real browser (Debian's Chromium,
// driven by playwright-core).
//
//   node tests/e2e.mjs '<json>'
//
// where <json> is {"page": REST URL that serves the console,
//                  "brokers": [{"name", "grpc": gRPC URL, "rest": REST URL}],
//                  "secured": {"name", "grpc", "rest", "token"} (optional),
//                  "queue": {"name", "grpc", "rest", "topic", "dlq", "consumer",
//                            "reason"} (optional),
//                  "artifacts": a directory for screenshots}.
// For each broker the page (always loaded from `page`, so the calls are
// cross-origin) creates a topic, tails it, publishes three messages and sees
// them in order, sees a consumer's lag grow, keeps up with a burst, shows an
// error as its gRPC code and message, and deletes the topic. Against the
// `secured` broker (authentication on) it is refused without a token and with
// a wrong one, then connects with the token and creates a topic.
// With `queue`, the page creates `topic` and `dlq`, the test creates the
// per-message consumer `consumer` (dead-letter topic `dlq`), the page publishes
// four messages, tails them through the consumer, acks offset 0, nacks offset
// 1 (and sees it redelivered with delivery count 2), rejects offset 2 with
// `reason`, and sees its ack of offset 3 answer "not leased" after the test
// acked it over REST; it sees the consumer's counts follow. The topics are
// left for the caller to check through the API.
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
  const noWindow = (await topicRow.locator("td").allTextContents())[6];
  check(noWindow === "off", `the dedupe window of a topic without one: ${noWindow}`);
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

  // A topic with a dedupe window: shown in the topics table; a message
  // published twice with one id is appended once.
  const deduped = `${topic}-dedupe`;
  await page.getByLabel("New topic").fill(deduped);
  await page.getByLabel("Dedupe window").fill("2m");
  await page.getByRole("button", { name: "Create" }).click();
  const dedupedRow = page.locator(`#topics-table tr[data-topic="${deduped}"]`);
  await dedupedRow.waitFor();
  const windowCell = (await dedupedRow.locator("td").allTextContents())[6];
  check(windowCell === "2m", `the dedupe window shown: ${windowCell}`);
  const onBroker = await rest(broker, "GET", `/v1/topics/${deduped}`);
  check(onBroker.body?.topic?.dedupeWindow === "120s", `the broker's dedupe window: ${JSON.stringify(onBroker)}`);
  await page.locator("#topic-name", { hasText: deduped }).waitFor();
  for (const expected of ["Published at offset 0.", "Already published at offset 0"]) {
    await page.locator("#publish-id").fill("order-1");
    await page.getByLabel("Value", { exact: true }).fill("once");
    await page.getByRole("button", { name: "Publish" }).click();
    await page.locator("#publish-result", { hasText: expected }).waitFor();
  }
  const once = await rest(broker, "GET", `/v1/topics/${deduped}`);
  check(once.body?.topic?.endOffset === "1", `one message appended: ${JSON.stringify(once)}`);
  await page.getByRole("button", { name: `Delete topic ${deduped}` }).click();
  await dedupedRow.waitFor({ state: "detached" });
  step("a dedupe window: shown, and a repeated id published once");

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

/**
 * What the consumers table shows of consumer `id` (runs in the page): its
 * details row's fields, and `committed`, `lag`, `mode`; false unless every
 * field of `wanted` (if given) has its value.
 */
function shownFacts({ id, wanted }) {
  const facts = {};
  for (const dd of document.querySelectorAll(`#consumers-table tr[data-queue="${id}"] dd`)) {
    facts[dd.dataset.field] = dd.textContent;
  }
  const cells = document.querySelectorAll(`#consumers-table tr[data-consumer="${id}"] td`);
  if (cells.length === 5) [facts.committed, facts.lag, facts.mode] = [2, 3, 4].map((i) => cells[i].textContent);
  if (wanted && !Object.entries(wanted).every(([k, v]) => facts[k] === v)) return false;
  return facts;
}

/** Waits until the consumers table shows `wanted` for consumer `id` (the page refreshes it after every settle and delivery). */
async function waitForFacts(page, id, wanted) {
  try {
    return await (await page.waitForFunction(shownFacts, { id, wanted })).jsonValue();
  } catch (error) {
    const facts = await page.evaluate(shownFacts, { id });
    throw new Error(`consumer ${id} shows ${JSON.stringify(facts)}, wanted ${JSON.stringify(wanted)}: ${error.message}`);
  }
}

/** Work-queue controls: the tail through a per-message consumer, Ack, Nack and Reject. */
async function queue(context, broker) {
  const { topic, dlq, consumer, reason } = broker;
  console.log(`console against ${broker.name}: tail through per-message consumer ${consumer}`);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  await page.goto(`${config.page}/?broker=${encodeURIComponent(broker.grpc)}`);
  await page.locator("#status", { hasText: `Connected to ${broker.grpc}` }).waitFor();

  for (const name of [dlq, topic]) {
    await page.getByLabel("New topic").fill(name);
    await page.getByLabel("New topic").press("Enter");
    await page.locator("#topic-name", { hasText: new RegExp(`^${name}$`) }).waitFor();
  }
  const created = await rest(broker, "POST", `/v1/topics/${topic}/consumers`, {
    consumerId: consumer,
    commitMode: "COMMIT_MODE_PER_MESSAGE",
    ackTimeout: "60s",
    maxDeliveries: 5,
    backoff: ["0s", "1.5s"],
    deadLetterTopic: dlq,
    maxOutstanding: 10,
  });
  check(created.status === 200, `create consumer: ${JSON.stringify(created)}`);
  await page.locator("#consumers-refresh").click();
  const settings = await waitForFacts(page, consumer, { mode: "per-message" });
  const wantedSettings = {
    "ack-timeout": "1m",
    "max-deliveries": "5",
    backoff: "0s, 1.5s",
    "dead-letter-topic": dlq,
    "max-outstanding": "10",
    outstanding: "0",
    waiting: "0",
    redelivered: "0",
    "dead-lettered": "0",
    "oldest-unacked": "none",
  };
  for (const [k, v] of Object.entries(wantedSettings)) {
    check(settings[k] === v, `consumer ${consumer} ${k}: ${settings[k]}, wanted ${v} (${JSON.stringify(settings)})`);
  }
  step(`topics ${topic} and ${dlq}, per-message consumer ${consumer}: its settings shown`);

  for (let i = 0; i < 4; i++) {
    await page.getByLabel("Value", { exact: true }).fill(`job-${i}`);
    await page.getByRole("button", { name: "Publish" }).click();
    await page.locator("#publish-result", { hasText: `Published at offset ${i}.` }).waitFor();
  }
  step("published 4 jobs from the form");

  await page.getByLabel("Through").selectOption(consumer);
  check(await page.getByLabel("From").isHidden(), "through a consumer, the tail has no start position");
  await page.getByRole("button", { name: "Start" }).click();
  const rows = page.locator("#tail-table tbody tr");
  await page.waitForFunction(() => document.querySelectorAll("#tail-table tbody tr").length >= 4);
  const seen = await rows.evaluateAll((trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)),
  );
  for (const [i, cells] of seen.entries()) {
    check(cells[0] === String(i) && cells[3] === `job-${i}` && cells[5] === "1", `tail row ${i}: ${JSON.stringify(cells)}`);
  }
  await waitForFacts(page, consumer, { outstanding: "4", committed: "0", lag: "4" });
  step("the tail through the consumer shows 4 jobs at delivery 1; 4 outstanding");

  const settleButton = (verb, offset, delivery) =>
    page.getByRole("button", { name: `${verb} offset ${offset}, delivery ${delivery}`, exact: true });
  const result = (offset, delivery) =>
    page.locator(`#tail-table tbody tr[data-offset="${offset}"][data-delivery="${delivery}"] .result`);

  await settleButton("Ack", 0, 1).click();
  await result(0, 1).filter({ hasText: /^Acked$/ }).waitFor();
  step("Ack offset 0: acked");

  await settleButton("Nack", 1, 1).click();
  await result(1, 1).filter({ hasText: /^Nacked$/ }).waitFor();
  const redelivery = page.locator('#tail-table tbody tr[data-offset="1"][data-delivery="2"]');
  await redelivery.waitFor();
  const again = await redelivery.locator("td").allTextContents();
  check(again[3] === "job-1" && again[5] === "2", `the redelivery of offset 1: ${JSON.stringify(again)}`);
  check(await settleButton("Ack", 1, 2).isEnabled(), "the redelivery can be acked");
  step("Nack offset 1: nacked, and redelivered at once with delivery count 2");

  await settleButton("Reject", 2, 1).click();
  const reasonField = page.getByLabel("Reason for rejecting offset 2, delivery 1");
  check(await reasonField.evaluate((input) => input === document.activeElement), "the reason field takes the focus");
  await reasonField.fill(reason);
  await page.getByRole("button", { name: "Confirm reject offset 2, delivery 1", exact: true }).click();
  await result(2, 1).filter({ hasText: `Rejected: ${reason}` }).waitFor();
  step(`Reject offset 2 (reason "${reason}"): rejected`);

  const acked = await rest(broker, "POST", `/v1/topics/${topic}/consumers/${consumer}:ack`, { offsets: ["3"] });
  check(
    acked.status === 200 && JSON.stringify(acked.body.appliedOffsets) === '["3"]',
    `ack of offset 3 over REST: ${JSON.stringify(acked)}`,
  );
  await settleButton("Ack", 3, 1).click();
  await result(3, 1).filter({ hasText: "Not leased: nothing done" }).waitFor();
  check((await result(3, 1).getAttribute("data-result")) === "not-leased", "offset 3 reads not leased");
  step("Ack offset 3 after it was acked elsewhere: not leased");

  const counts = await waitForFacts(page, consumer, {
    committed: "1",
    lag: "3",
    outstanding: "1",
    waiting: "0",
    redelivered: "1",
    "dead-lettered": "1",
  });
  check(counts["oldest-unacked"] !== "none", `the oldest unacked message has an age: ${JSON.stringify(counts)}`);
  step(`counts: committed 1, outstanding 1, waiting 0, redelivered 1, dead-lettered 1, oldest unacked ${counts["oldest-unacked"]}`);

  const shot = join(config.artifacts, "console-queue.png");
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`  screenshot: ${shot}`);
  await page.getByRole("button", { name: "Stop" }).click();
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
  if (config.queue) await queue(context, config.queue);
  console.log("console e2e: passed");
} catch (error) {
  failed = true;
  console.error(`console e2e: FAILED: ${error?.stack ?? error}`);
} finally {
  await context?.close();
  await rm(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
