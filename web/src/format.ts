// How values read in the tables.
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import type { RetentionPolicy } from "./gen/gostream/v1/gostream_pb";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Bytes as text when they are UTF-8, otherwise as `base64:...`. */
export function bytesText(bytes: Uint8Array): string {
  if (bytes.length === 0) return "";
  try {
    return utf8.decode(bytes);
  } catch {
    return `base64:${toBase64(bytes)}`;
  }
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Decodes base64 (standard or URL alphabet, padding optional); throws on bad input. */
export function fromBase64(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "").replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(clean);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A byte count with a binary unit. */
export function size(n: bigint): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A duration in days, hours, minutes and seconds; under a minute with its fraction (`1.5s`, `250ms`). */
export function duration(d: Duration | undefined): string {
  if (d === undefined) return "";
  let s = Number(d.seconds);
  if (s < 60 && d.nanos > 0) {
    const ms = s * 1000 + Math.round(d.nanos / 1e6);
    return ms < 1000 ? `${ms}ms` : `${Number((ms / 1000).toFixed(3))}s`;
  }
  const parts: string[] = [];
  for (const [unit, secs] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    if (s >= secs) {
      parts.push(`${Math.floor(s / secs)}${unit}`);
      s %= secs;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s}s`);
  return parts.join(" ");
}

/** A retention policy in a few words; 0 means no limit. */
export function retention(r: RetentionPolicy | undefined): string {
  if (r === undefined) return "unlimited";
  const limits: string[] = [];
  if (r.maxMessages !== undefined && r.maxMessages > 0n) limits.push(`${r.maxMessages} msgs`);
  if (r.maxBytes !== undefined && r.maxBytes > 0n) limits.push(size(r.maxBytes));
  if (r.maxAge !== undefined && (r.maxAge.seconds > 0n || r.maxAge.nanos > 0)) limits.push(duration(r.maxAge));
  return limits.length === 0 ? "unlimited" : limits.join(", ");
}

/** A topic's dedupe window: `off` when unset or zero. */
export function dedupeWindow(d: Duration | undefined): string {
  if (d === undefined || (d.seconds === 0n && d.nanos === 0)) return "off";
  return duration(d);
}

/**
 * Parses a duration as the command-line client writes it: whole numbers with
 * units `ms`, `s`, `m`, `h`, `d` one after another (`90s`, `1h30m`), or `0`.
 * Returns seconds and nanos; throws on anything else.
 */
export function parseDuration(text: string): { seconds: bigint; nanos: number } {
  const clean = text.trim();
  if (clean === "0") return { seconds: 0n, nanos: 0 };
  const units: { [unit: string]: number } = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const part = /(\d+)(ms|s|m|h|d)/y;
  let millis = 0;
  let at = 0;
  while (at < clean.length) {
    part.lastIndex = at;
    const match = part.exec(clean);
    if (match === null) throw new Error(`"${text}" is not a duration such as 90s, 2m or 1h30m`);
    millis += Number(match[1]) * units[match[2]];
    at = part.lastIndex;
  }
  if (clean === "") throw new Error("the duration is empty");
  return { seconds: BigInt(Math.floor(millis / 1000)), nanos: (millis % 1000) * 1_000_000 };
}

export function time(t: Timestamp | undefined): string {
  if (t === undefined) return "";
  const ms = Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

/** `name: value` lines -> a header map; throws on a line without a colon. */
export function parseHeaders(text: string): { [name: string]: string } {
  const headers: { [name: string]: string } = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`header line ${i + 1} is not "name: value": ${line}`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

export function headersText(headers: { [name: string]: string }): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ");
}
