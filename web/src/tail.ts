// The live tail: an ephemeral Subscribe stream rendered without freezing
// the page. Messages are queued as they arrive and drawn once per animation
// frame; only the newest MAX_ROWS are kept, in the queue and in the table.
import { create } from "@bufbuild/protobuf";
import { isCanceled, type Broker } from "./client";
import { row } from "./dom";
import { bytesText, headersText, time } from "./format";
import { Boundary, PositionSchema, type Message } from "./gen/gostream/v1/gostream_pb";

/** The most rows the table keeps. */
export const MAX_ROWS = 500;

export interface TailView {
  body: HTMLTableSectionElement;
  status: HTMLElement;
  onRunning(running: boolean): void;
  onError(error: unknown): void;
}

export class Tail {
  private abort: AbortController | null = null;
  private queue: Message[] = [];
  private frame = 0;
  private received = 0;

  constructor(private readonly view: TailView) {}

  get running(): boolean {
    return this.abort !== null;
  }

  /** Subscribes to `topic` from `from` until [`stop`] or an error. */
  async start(broker: Broker, topic: string, from: "latest" | "earliest"): Promise<void> {
    this.stop();
    const abort = new AbortController();
    this.abort = abort;
    this.received = 0;
    this.view.onRunning(true);
    this.setStatus(`Tailing ${topic} from ${from}…`);
    const boundary = from === "earliest" ? Boundary.EARLIEST : Boundary.LATEST;
    try {
      const stream = broker.consumers.subscribe(
        {
          topic,
          start: create(PositionSchema, { position: { case: "boundary", value: boundary } }),
          maxMessages: 500,
        },
        { signal: abort.signal },
      );
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

  stop(): void {
    if (this.abort === null) return;
    this.abort.abort();
    this.abort = null;
    this.view.onRunning(false);
    this.setStatus(`Stopped after ${this.received} messages.`);
  }

  clear(): void {
    this.queue = [];
    this.view.body.replaceChildren();
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
    for (const m of messages) {
      const tr = row(
        [m.offset.toString(), time(m.publishTime), bytesText(m.key), bytesText(m.value), headersText(m.headers)],
        [0],
      );
      tr.dataset.offset = m.offset.toString();
      fragment.append(tr);
    }
    const body = this.view.body;
    body.append(fragment);
    let extra = body.rows.length - MAX_ROWS;
    while (extra-- > 0) body.firstElementChild?.remove();
    const scroller = body.closest(".scroll");
    if (scroller !== null) scroller.scrollTop = scroller.scrollHeight;
    if (this.running) this.setStatus(`Tailing: ${this.received} messages received (showing the last ${body.rows.length}).`);
  }

  private setStatus(text: string): void {
    this.view.status.textContent = text;
  }
}
