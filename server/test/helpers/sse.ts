/**
 * A Server-Sent Events reader for tests: parses a `text/event-stream` body as it arrives (the
 * WHATWG HTML "event stream interpretation": blocks separated by a blank line, `field: value`
 * lines, `:` comment lines) from any byte stream — fetch's body, a node:https response, an
 * HTTP/2 stream — and lets a test wait for a condition on what arrived so far.
 */

/** One dispatched message (comments are counted apart). */
export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** A stream being read. */
export interface SseReader {
  readonly messages: SseMessage[];
  /** Comment lines received so far (`: ping` heartbeats included). */
  readonly comments: string[];
  /** Set once the body ended (or failed): why, as far as the reader knows. */
  readonly ended: string | null;
  /** Waits until `pred` holds for what arrived so far (bounded by the caller's test timeout); throws if the body ends first. */
  until(what: string, pred: (r: SseReader) => boolean): Promise<void>;
  /** Resolves once the body ended. */
  readonly done: Promise<void>;
}

/** Reads `body`, parsing as it goes. */
export function readSse(body: AsyncIterable<Uint8Array>): SseReader {
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  let ended: string | null = null;
  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    w.forEach((f) => f());
  };
  let buffer = '';
  const done = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const m: SseMessage = { data: '' };
          let any = false;
          for (const line of block.split('\n')) {
            if (line.length === 0) continue;
            if (line.startsWith(':')) {
              comments.push(line.slice(1).trim());
              continue;
            }
            const colon = line.indexOf(':');
            const k = colon < 0 ? line : line.slice(0, colon);
            const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (k === 'id') m.id = v;
            else if (k === 'event') m.event = v;
            else if (k === 'data') m.data += m.data === '' ? v : `\n${v}`;
            else continue; // retry: and unknown fields dispatch nothing
            any = true;
          }
          if (any) messages.push(m);
        }
        wake();
      }
      ended = 'the body ended';
    } catch (err) {
      ended = `the body failed: ${(err as Error).message}`;
    }
    wake();
  })();
  const reader: SseReader = {
    messages,
    comments,
    get ended() {
      return ended;
    },
    async until(what, pred) {
      while (!pred(reader)) {
        if (ended !== null) throw new Error(`waiting for ${what}, ${ended}; got ${messages.length} messages`);
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    done,
  };
  return reader;
}

/** An SSE request over fetch, with its reader; `close` aborts it and waits for the reader to stop. */
export async function openSse(url: string, headers: Record<string, string>): Promise<SseReader & { status: number; headers: Headers; close(): Promise<void> }> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const reader = readSse(res.body as unknown as AsyncIterable<Uint8Array>);
  return Object.assign(reader, {
    status: res.status,
    headers: res.headers,
    async close() {
      abort.abort();
      await reader.done;
    },
  });
}

/** The `event: event` messages, as [leaf index, parsed data]. */
export function eventsOf(r: Pick<SseReader, 'messages'>): Array<{ leafIndex: number; event: { id: string; action: string; leafIndex: number } }> {
  return r.messages.filter((m) => m.event === 'event').map((m) => ({ leafIndex: Number(m.id), event: JSON.parse(m.data) as { id: string; action: string; leafIndex: number } }));
}
