/** PublisherStats is the publisher's live counters and connection state, read by health, metrics and the status page. */
export interface PublisherStats {
  connected: boolean;
  /** Connection attempts that followed a lost or failed connection. */
  reconnects: number;
  /** The backoff delay currently being waited, seconds (0 when connected). */
  backoffS: number;
  inflight: number;
  published: number;
  delivered: number;
  /** Messages sent again after a reconnect or restart (possible duplicates). */
  resent: number;
  lastError: string | undefined;
}
