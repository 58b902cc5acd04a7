/**
 * ListenerPool keeps the HTTP listeners open across a config reload (SIGHUP), so that no request
 * is refused or cut while the runtime restarts (#12):
 *
 *   serve(key, listen, handlers) ─► OPEN: the listener exists (reused when its address and body
 *        limit are unchanged; otherwise the old one is closed and a new one bound)
 *   release() ─► PARKED: new requests wait (up to PARK_TIMEOUT_MS) for the next serve() of the key;
 *        release resolves once the requests the old handlers were serving have been answered
 *   serve() again ─► OPEN with the new handlers: parked requests go to them
 *   closeUnclaimed() / closeAll() ─► CLOSED: parked requests are answered 503, the socket closes
 *
 * One Bun server per key; its fetch is a trampoline to the current handlers.
 */
import type { Server } from "bun";
import type { Listen } from "../config/index.ts";
import { jsonError } from "./guard.ts";

export interface Handlers {
  fetch(request: Request, server: Server<undefined>): Response | Promise<Response>;
  error?(error: Error): Response;
}

export interface Listener {
  port: number;
  server: Server<undefined>;
  /** Stop handing requests to these handlers; resolves when the ones they serve are answered. */
  release(): Promise<void>;
}

interface Entry {
  address: string;
  server: Server<undefined>;
  handlers: Handlers | undefined;
  parked: Array<(ok: boolean) => void>;
  inflight: number;
  idle: Array<() => void>;
}

/** How long a request waits for the runtime to come back before it is answered 503. */
const PARK_TIMEOUT_MS = 30_000;

export class ListenerPool {
  private readonly entries = new Map<string, Entry>();

  serve(key: string, listen: Listen, handlers: Handlers, maxRequestBodySize?: number): Listener {
    const address = `${listen.host}:${listen.port}|${maxRequestBodySize ?? ""}`;
    let entry = this.entries.get(key);
    if (entry && entry.address !== address) {
      this.close(key, entry);
      entry = undefined;
    }
    if (!entry) {
      const fresh: Entry = {
        address,
        server: undefined as unknown as Server<undefined>,
        handlers: undefined,
        parked: [],
        inflight: 0,
        idle: [],
      };
      fresh.server = Bun.serve({
        hostname: listen.host,
        port: listen.port,
        ...(maxRequestBodySize === undefined ? {} : { maxRequestBodySize }),
        fetch: (request, server) => this.dispatch(fresh, request, server),
        error: (error) => fresh.handlers?.error?.(error) ?? jsonError(500, "internal error"),
      });
      entry = fresh;
      this.entries.set(key, entry);
    }
    const e = entry;
    e.handlers = handlers;
    for (const wake of e.parked.splice(0)) wake(true);
    return {
      port: e.server.port ?? listen.port,
      server: e.server,
      release: () => {
        if (e.handlers === handlers) e.handlers = undefined;
        if (e.inflight === 0) return Promise.resolve();
        return new Promise<void>((resolve) => e.idle.push(resolve));
      },
    };
  }

  /** Close listeners no runtime claimed since their release (e.g. a reload disabled them). */
  async closeUnclaimed(): Promise<void> {
    for (const [key, entry] of this.entries) if (!entry.handlers) this.close(key, entry);
  }

  async closeAll(): Promise<void> {
    for (const [key, entry] of this.entries) this.close(key, entry);
  }

  private close(key: string, entry: Entry): void {
    this.entries.delete(key);
    entry.handlers = undefined;
    for (const wake of entry.parked.splice(0)) wake(false);
    void entry.server.stop(false);
  }

  private async dispatch(entry: Entry, request: Request, server: Server<undefined>): Promise<Response> {
    if (!entry.handlers) {
      const ok = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), PARK_TIMEOUT_MS);
        entry.parked.push((value) => {
          clearTimeout(timer);
          resolve(value);
        });
      });
      if (!ok || !entry.handlers) return jsonError(503, "fieldrelay is restarting; retry in a moment");
    }
    const handlers = entry.handlers;
    entry.inflight++;
    try {
      return await handlers.fetch(request, server);
    } finally {
      entry.inflight--;
      if (entry.inflight === 0) for (const done of entry.idle.splice(0)) done();
    }
  }
}

/** A listener outside any pool: release() closes it (what tests and one-shot servers want). */
export function serveOnce(listen: Listen, handlers: Handlers, maxRequestBodySize?: number): Listener {
  const server = Bun.serve({
    hostname: listen.host,
    port: listen.port,
    ...(maxRequestBodySize === undefined ? {} : { maxRequestBodySize }),
    fetch: (request, srv) => handlers.fetch(request, srv),
    error: (error) => handlers.error?.(error) ?? jsonError(500, "internal error"),
  });
  return {
    port: server.port ?? listen.port,
    server,
    release: () => server.stop(true),
  };
}
