// The live tail: a Subscribe stream rendered without freezing the page.
// Messages are queued as they arrive and drawn once per animation frame; only
// the newest MAX_ROWS are kept, in the queue and in the table.
//
// Ephemeral, the tail reads from the latest or the earliest offset and
// changes nothing on the broker. Through a per-message consumer, every
// message it shows is leased to this page: its row shows the delivery count
// and Ack / Nack / Reject buttons, which settle that delivery only (a lease
// that expired and went to another reader answers "not leased").
import { create } from "@bufbuild/protobuf";
import { isCanceled, type Broker } from "./client";
import { el, row } from "./dom";
import { bytesText, headersText, time } from "./format";
import { Boundary, DeliverySchema, PositionSchema, type Message } from "./gen/gostream/v1/gostream_pb";

/** The most rows the table keeps. */
export const MAX_ROWS = 500;

/** Where a tail reads: from a boundary of the topic, or through a per-message consumer. */
export type TailSource = { from: "latest" | "earliest" } | { consumer: string };

/** How a delivery can be settled from its row. */
export type Settle = "ack" | "nack" | "reject";

export interface TailView {
  table: HTMLTableElement;
  status: HTMLElement;
  onRunning(running: boolean): void;
  onError(error: unknown): void;
  /** Something changed the consumer's counts: messages delivered, or one settled. */
  onConsumerChanged(): void;
}

/** What a settle call answers: the offsets applied and those not leased. */
interface Settled {
  appliedOffsets: bigint[];
  notLeasedOffsets: bigint[];
}

const DONE: { [S in Settle]: string } = { ack: "Acked", nack: "Nacked", reject: "Rejected" };

export class Tail {
  private abort: AbortController | null = null;
  private queue: Message[] = [];
  private frame = 0;
  private received = 0;
  /** The topic and consumer of the rows' settle buttons; null for an ephemeral tail. */
  private through: { broker: Broker; topic: string; consumer: string } | null = null;

  constructor(private readonly view: TailView) {}

  get running(): boolean {
    return this.abort !== null;
  }

  private get body(): HTMLTableSectionElement {
    return this.view.table.tBodies[0];
  }

  /** Subscribes to `topic` from `source` until [`stop`] or an error. */
  async start(broker: Broker, topic: string, source: TailSource): Promise<void> {
    this.stop();
    const abort = new AbortController();
    this.abort = abort;
    this.received = 0;
    this.view.onRunning(true);
    const consumer = "consumer" in source ? source.consumer : "";
    if (consumer !== "") {
      // Rows of another source would settle through the wrong consumer.
      if (this.through?.consumer !== consumer || this.through.topic !== topic) this.clear();
      this.through = { broker, topic, consumer };
      this.view.table.classList.add("queue");
      this.setStatus(`Tailing ${topic} through consumer ${consumer}…`);
    } else {
      if (this.through !== null) this.clear();
      this.through = null;
      this.view.table.classList.remove("queue");
      this.setStatus(`Tailing ${topic} from ${"from" in source ? source.from : "latest"}…`);
    }
    const request =
      "consumer" in source
        ? { topic, consumer, maxMessages: 500 }
        : {
            topic,
            start: create(PositionSchema, {
              position: { case: "boundary", value: source.from === "earliest" ? Boundary.EARLIEST : Boundary.LATEST },
            }),
            maxMessages: 500,
          };
    try {
      const stream = broker.consumers.subscribe(request, { signal: abort.signal });
      for await (const batch of stream) {
        this.push(batch.messages);
      }
      if (this.abort === abort) this.setStatus(`The broker ended the stream after ${this.received} messages.`);
    } catch (error) {
      if (abort.signal.aborted || isCanceled(error)) return;
      this.setStatus(`Stopped by an error after ${this.received} messages.`);
      this.view.onError(error);
    } finally {
      if (this.abort === abort) {
        this.abort = null;
        this.view.onRunning(false);
      }
    }
  }

  /** Ends the stream; rows shown through a consumer can still be settled. */
  stop(): void {
    if (this.abort === null) return;
    this.abort.abort();
    this.abort = null;
    this.view.onRunning(false);
    this.setStatus(`Stopped after ${this.received} messages.`);
  }

  clear(): void {
    this.queue = [];
    this.body.replaceChildren();
  }

  private push(messages: Message[]): void {
    this.received += messages.length;
    this.queue.push(...messages);
    if (this.queue.length > MAX_ROWS) this.queue.splice(0, this.queue.length - MAX_ROWS);
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.draw());
  }

  private draw(): void {
    this.frame = 0;
    const messages = this.queue;
    this.queue = [];
    const fragment = document.createDocumentFragment();
    const through = this.through;
    for (const m of messages) {
      const delivery = el("td", { class: "num queue-col" }, m.deliveryCount > 0 ? m.deliveryCount.toString() : "");
      const settle = el("td", { class: "queue-col" });
      if (through !== null && m.deliveryCount > 0) settle.append(this.controls(m.offset, m.deliveryCount, settle));
      const tr = row(
        [m.offset.toString(), time(m.publishTime), bytesText(m.key), bytesText(m.value), headersText(m.headers)],
        [0],
      );
      tr.append(delivery, settle);
      tr.dataset.offset = m.offset.toString();
      if (m.deliveryCount > 0) tr.dataset.delivery = m.deliveryCount.toString();
      fragment.append(tr);
    }
    const body = this.body;
    body.append(fragment);
    let extra = body.rows.length - MAX_ROWS;
    while (extra-- > 0) body.firstElementChild?.remove();
    const scroller = body.closest(".scroll");
    if (scroller !== null) scroller.scrollTop = scroller.scrollHeight;
    if (this.running) this.setStatus(`Tailing: ${this.received} messages received (showing the last ${body.rows.length}).`);
    if (through !== null && messages.length > 0) this.view.onConsumerChanged();
  }

  /** The Ack / Nack / Reject buttons of one delivery, drawn in `cell`. */
  private controls(offset: bigint, count: number, cell: HTMLTableCellElement): HTMLElement {
    const what = `offset ${offset}, delivery ${count}`;
    const button = (settle: Settle, text: string) =>
      el("button", { type: "button", "data-settle": settle, "aria-label": `${text} ${what}` }, text);
    const ack = button("ack", "Ack");
    const nack = button("nack", "Nack");
    const reject = button("reject", "Reject");
    const buttons = el("div", { class: "row settle" }, ack, nack, reject);
    ack.addEventListener("click", () => void this.settle("ack", offset, count, cell, buttons));
    nack.addEventListener("click", () => void this.settle("nack", offset, count, cell, buttons));
    reject.addEventListener("click", () => {
      // Ask for the reason in place: a labelled field, then confirm or cancel.
      const id = `reject-reason-${offset}-${count}`;
      const reason = el("input", { id, name: "reason", maxlength: "1024", spellcheck: "false" });
      const cancel = el("button", { type: "button", "aria-label": `Cancel reject ${what}` }, "Cancel");
      const form = el(
        "form",
        { class: "reject" },
        el(
          "label",
          { for: id },
          "Reason",
          el("span", { class: "visually-hidden" }, ` for rejecting ${what}`),
          " ",
          el("span", { class: "hint" }, "(optional)"),
        ),
        reason,
        el(
          "div",
          { class: "row settle" },
          el("button", { type: "submit", "aria-label": `Confirm reject ${what}` }, "Reject"),
          cancel,
        ),
      );
      cancel.addEventListener("click", () => {
        cell.replaceChildren(buttons);
        reject.focus();
      });
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        void this.settle("reject", offset, count, cell, form, reason.value);
      });
      cell.replaceChildren(form);
      reason.focus();
    });
    return buttons;
  }

  /** Settles one delivery; the row then shows what the broker did. */
  private async settle(
    settle: Settle,
    offset: bigint,
    count: number,
    cell: HTMLTableCellElement,
    controls: HTMLElement,
    reason = "",
  ): Promise<void> {
    const through = this.through;
    if (through === null) return;
    const { broker, topic, consumer } = through;
    const request = {
      topic,
      consumer,
      deliveries: [create(DeliverySchema, { offset, deliveryCount: count })],
    };
    const disabled = [...controls.querySelectorAll<HTMLButtonElement | HTMLInputElement>("button, input")];
    for (const control of disabled) control.disabled = true;
    let answer: Settled;
    try {
      if (settle === "ack") answer = await broker.consumers.ack(request);
      else if (settle === "nack") answer = await broker.consumers.nack(request);
      else answer = await broker.consumers.reject({ ...request, reason });
    } catch (error) {
      for (const control of disabled) control.disabled = false;
      this.view.onError(error);
      return;
    }
    const applied = answer.appliedOffsets.includes(offset);
    const text = applied
      ? `${DONE[settle]}${settle === "reject" && reason !== "" ? `: ${reason}` : ""}`
      : "Not leased: nothing done";
    const result = el(
      "span",
      { class: applied ? "result" : "result stale", "data-result": applied ? settle : "not-leased", tabindex: "-1" },
      text,
    );
    const focused = cell.contains(document.activeElement);
    cell.replaceChildren(result);
    if (focused) result.focus();
    this.setStatus(`Offset ${offset} (delivery ${count}): ${text.charAt(0).toLowerCase()}${text.slice(1)}.`);
    this.view.onConsumerChanged();
  }

  private setStatus(text: string): void {
    this.view.status.textContent = text;
  }
}
