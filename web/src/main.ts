// The GoStream web console: topics, a topic's consumers, publish and a live
// tail, all over grpc-web to the broker URL chosen in the page.
import { connect, failure, type Broker } from "./client";
import { byId, el, row } from "./dom";
import { dedupeWindow, duration, fromBase64, parseDuration, parseHeaders, retention, size } from "./format";
import { CommitMode, type Consumer } from "./gen/gostream/v1/gostream_pb";
import { Tail, type TailSource } from "./tail";

const STORAGE_KEY = "gostream.console.broker";

/** The broker URL: `?broker=`, else the last one used, else port 9090 of this host. */
function initialBrokerUrl(): string {
  const fromQuery = new URLSearchParams(location.search).get("broker");
  if (fromQuery) return fromQuery;
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (stored) return stored;
  } catch {
    // Storage may be disabled; the default still works.
  }
  return `${location.protocol}//${location.hostname}:9090`;
}

const ui = {
  connection: byId<HTMLFormElement>("connection"),
  url: byId<HTMLInputElement>("broker-url"),
  token: byId<HTMLInputElement>("broker-token"),
  status: byId("status"),
  error: byId("error"),
  errorCode: byId("error-code"),
  errorMessage: byId("error-message"),
  errorDismiss: byId<HTMLButtonElement>("error-dismiss"),
  topicsRefresh: byId<HTMLButtonElement>("topics-refresh"),
  createTopic: byId<HTMLFormElement>("create-topic"),
  newTopic: byId<HTMLInputElement>("new-topic"),
  newTopicDedupe: byId<HTMLInputElement>("new-topic-dedupe"),
  topicsBody: byId<HTMLTableElement>("topics-table").tBodies[0],
  topicsEmpty: byId("topics-empty"),
  topic: byId("topic"),
  topicName: byId("topic-name"),
  consumersRefresh: byId<HTMLButtonElement>("consumers-refresh"),
  consumersBody: byId<HTMLTableElement>("consumers-table").tBodies[0],
  consumersEmpty: byId("consumers-empty"),
  publish: byId<HTMLFormElement>("publish-form"),
  publishKey: byId<HTMLInputElement>("publish-key"),
  publishId: byId<HTMLInputElement>("publish-id"),
  publishValue: byId<HTMLTextAreaElement>("publish-value"),
  publishHeaders: byId<HTMLTextAreaElement>("publish-headers"),
  publishResult: byId<HTMLOutputElement>("publish-result"),
  tailForm: byId<HTMLFormElement>("tail-form"),
  tailThrough: byId("tail-through"),
  tailConsumer: byId<HTMLSelectElement>("tail-consumer"),
  tailConsumerHint: byId("tail-consumer-hint"),
  tailBoundary: byId("tail-boundary"),
  tailFrom: byId<HTMLSelectElement>("tail-from"),
  tailStart: byId<HTMLButtonElement>("tail-start"),
  tailStop: byId<HTMLButtonElement>("tail-stop"),
  tailClear: byId<HTMLButtonElement>("tail-clear"),
  tailTable: byId<HTMLTableElement>("tail-table"),
  tailStatus: byId("tail-status"),
};

let broker: Broker = connect(initialBrokerUrl(), "");
let selected: string | null = null;

function showError(error: unknown): void {
  const { code, message } = failure(error);
  ui.errorCode.textContent = code;
  ui.errorMessage.textContent = message;
  ui.error.hidden = false;
}

function clearError(): void {
  ui.error.hidden = true;
}

/** Runs `action`, showing its error if it fails; returns whether it succeeded. */
async function attempt(action: () => Promise<void>): Promise<boolean> {
  try {
    await action();
    return true;
  } catch (error) {
    showError(error);
    return false;
  }
}

/** A pending refresh of the consumers table, so a burst of deliveries refreshes it once. */
let consumersRefresh = 0;

const tail = new Tail({
  table: ui.tailTable,
  status: ui.tailStatus,
  onRunning(running) {
    ui.tailStart.disabled = running;
    ui.tailStop.disabled = !running;
    ui.tailConsumer.disabled = running;
    ui.tailFrom.disabled = running;
  },
  onError: showError,
  onConsumerChanged() {
    if (consumersRefresh !== 0) return;
    consumersRefresh = window.setTimeout(() => {
      consumersRefresh = 0;
      void attempt(refreshConsumers);
    }, 200);
  },
});

async function refreshTopics(): Promise<void> {
  const names: string[] = [];
  const rows: HTMLTableRowElement[] = [];
  let pageToken = "";
  do {
    const page = await broker.topics.listTopics({ pageSize: 1000, pageToken });
    for (const t of page.topics) {
      names.push(t.name);
      const open = el("button", { type: "button", class: "link" }, t.name);
      open.addEventListener("click", () => selectTopic(t.name));
      const remove = el("button", { type: "button", "aria-label": `Delete topic ${t.name}` }, "Delete");
      remove.addEventListener("click", () => void deleteTopic(t.name));
      const tr = row(
        [open, t.startOffset.toString(), t.endOffset.toString(), t.messageCount.toString(), size(t.sizeBytes), retention(t.retention), dedupeWindow(t.dedupeWindow), remove],
        [1, 2, 3, 4],
      );
      tr.dataset.topic = t.name;
      if (t.name === selected) tr.setAttribute("aria-current", "true");
      rows.push(tr);
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  ui.topicsBody.replaceChildren(...rows);
  ui.topicsEmpty.hidden = rows.length > 0;
  if (selected !== null && !names.includes(selected)) selectTopic(null);
  ui.status.textContent = `Connected to ${broker.url}: ${rows.length} topic${rows.length === 1 ? "" : "s"}.`;
}

function selectTopic(name: string | null): void {
  if (name !== selected) {
    tail.stop();
    tail.clear();
    showTailConsumers([]);
  }
  selected = name;
  for (const tr of ui.topicsBody.rows) {
    if (tr.dataset.topic === name) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
  }
  ui.topic.hidden = name === null;
  if (name === null) return;
  ui.topicName.textContent = name;
  ui.publishResult.textContent = "";
  void attempt(refreshConsumers);
}

function commitMode(mode: CommitMode): string {
  switch (mode) {
    case CommitMode.MANUAL:
      return "manual";
    case CommitMode.PER_MESSAGE:
      return "per-message";
    default:
      return "auto";
  }
}

/** A per-message consumer's settings and counts, as a row under its own. */
function queueDetails(c: Consumer): HTMLTableRowElement {
  const facts: [string, string, string][] = [
    ["ack-timeout", "Ack timeout", duration(c.ackTimeout)],
    ["max-deliveries", "Max deliveries", c.maxDeliveries === 0 ? "unlimited" : c.maxDeliveries.toString()],
    ["backoff", "Backoff", c.backoff.length === 0 ? "none" : c.backoff.map((d) => duration(d)).join(", ")],
    ["dead-letter-topic", "Dead-letter topic", c.deadLetterTopic === "" ? "none (dropped)" : c.deadLetterTopic],
    ["max-outstanding", "Max outstanding", c.maxOutstanding.toString()],
    ["outstanding", "Outstanding", c.outstanding.toString()],
    ["waiting", "Waiting", c.waiting.toString()],
    ["redelivered", "Redelivered", c.redelivered.toString()],
    ["dead-lettered", "Dead-lettered", c.deadLettered.toString()],
    ["oldest-unacked", "Oldest unacked", c.oldestUnackedAge === undefined ? "none" : duration(c.oldestUnackedAge)],
  ];
  const list = el(
    "dl",
    { class: "facts", "aria-label": `Consumer ${c.id}: settings and counts` },
    ...facts.map(([field, name, value]) => el("div", {}, el("dt", {}, name), el("dd", { "data-field": field }, value))),
  );
  const tr = el("tr", { class: "details" }, el("td", { colspan: "5" }, list));
  tr.dataset.queue = c.id;
  return tr;
}

async function refreshConsumers(): Promise<void> {
  if (selected === null) return;
  const topic = selected;
  const rows: HTMLTableRowElement[] = [];
  const queues: string[] = [];
  let pageToken = "";
  do {
    const page = await broker.consumers.listConsumers({ topic, pageSize: 1000, pageToken });
    for (const c of page.consumers) {
      const tr = row(
        [c.id, c.offset.toString(), c.committedOffset.toString(), c.lag.toString(), commitMode(c.commitMode)],
        [1, 2, 3],
      );
      tr.dataset.consumer = c.id;
      rows.push(tr);
      if (c.commitMode === CommitMode.PER_MESSAGE) {
        rows.push(queueDetails(c));
        queues.push(c.id);
      }
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  if (topic !== selected) return;
  ui.consumersBody.replaceChildren(...rows);
  ui.consumersEmpty.hidden = rows.length > 0;
  showTailConsumers(queues);
}

/** The per-message consumers the tail can read through; the choice is kept while it exists. */
function showTailConsumers(ids: string[]): void {
  const chosen = ui.tailConsumer.value;
  const options = [el("option", { value: "" }, "none")];
  for (const id of ids) options.push(el("option", { value: id }, id));
  ui.tailConsumer.replaceChildren(...options);
  ui.tailConsumer.value = ids.includes(chosen) ? chosen : "";
  ui.tailThrough.hidden = ids.length === 0;
  tailSourceChanged();
}

/** Through a consumer the tail reads from the consumer's position, not from a boundary. */
function tailSourceChanged(): void {
  const through = ui.tailConsumer.value !== "";
  ui.tailBoundary.hidden = through;
  ui.tailConsumerHint.hidden = !through;
}

async function deleteTopic(name: string): Promise<void> {
  if (!confirm(`Delete topic ${name} with all its messages and consumers?`)) return;
  clearError();
  await attempt(async () => {
    await broker.topics.deleteTopic({ name });
    if (selected === name) selectTopic(null);
    await refreshTopics();
  });
}

ui.url.value = broker.url;

ui.connection.addEventListener("submit", (event) => {
  event.preventDefault();
  const url = ui.url.value.trim();
  try {
    localStorage.setItem(STORAGE_KEY, url);
  } catch {
    // Not remembered, but used.
  }
  tail.stop();
  broker = connect(url, ui.token.value);
  clearError();
  selectTopic(null);
  void attempt(refreshTopics);
});

ui.errorDismiss.addEventListener("click", clearError);
ui.topicsRefresh.addEventListener("click", () => {
  clearError();
  void attempt(refreshTopics);
});
ui.consumersRefresh.addEventListener("click", () => {
  clearError();
  void attempt(refreshConsumers);
});

ui.createTopic.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.newTopic.value.trim();
  const dedupeText = ui.newTopicDedupe.value.trim();
  clearError();
  void attempt(async () => {
    const dedupe = dedupeText === "" ? undefined : parseDuration(dedupeText);
    await broker.topics.createTopic({ name, dedupeWindow: dedupe });
    ui.newTopic.value = "";
    ui.newTopicDedupe.value = "";
    await refreshTopics();
    selectTopic(name);
  });
});

ui.publish.addEventListener("submit", (event) => {
  event.preventDefault();
  if (selected === null) return;
  const topic = selected;
  clearError();
  ui.publishResult.textContent = "";
  void attempt(async () => {
    const encoding = new FormData(ui.publish).get("encoding");
    let value: Uint8Array;
    try {
      value = encoding === "base64" ? fromBase64(ui.publishValue.value) : new TextEncoder().encode(ui.publishValue.value);
    } catch {
      throw new Error("the value is not valid base64");
    }
    const record = {
      key: new TextEncoder().encode(ui.publishKey.value),
      value,
      headers: parseHeaders(ui.publishHeaders.value),
      id: ui.publishId.value,
    };
    const response = await broker.publisher.publish({ topic, records: [record] });
    const duplicate = response.duplicateRecords[0];
    ui.publishResult.textContent =
      duplicate === undefined
        ? `Published at offset ${response.firstOffset}.`
        : `Already published at offset ${duplicate.offset} (id ${record.id}): not published again.`;
    await refreshTopics();
  });
});

ui.tailForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (selected === null) return;
  clearError();
  const consumer = ui.tailConsumer.value;
  const source: TailSource =
    consumer !== "" ? { consumer } : { from: ui.tailFrom.value === "earliest" ? "earliest" : "latest" };
  void tail.start(broker, selected, source);
});
ui.tailConsumer.addEventListener("change", tailSourceChanged);
ui.tailStop.addEventListener("click", () => tail.stop());
ui.tailClear.addEventListener("click", () => tail.clear());

void attempt(refreshTopics);
