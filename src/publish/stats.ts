/** PublisherStats is the publisher's live counters and connection state, read by health, metrics and the status page. */
export interface PublisherStats {
  connected: boolean;
  /** Connection attempts that followed a lost or failed connection. */
  reconnects: number;
  /** The backoff delay currently being waited, seconds (0 when connected). */
  backoffS: number;
  /** Readings handed to the broker and not yet acknowledged (a batch in flight counts its readings). */
  inflight: number;
  /** Readings handed to the broker, resends included (= readingsSent; kept for existing readers). */
  published: number;
  delivered: number;
  /** Readings sent again after a reconnect or restart (possible duplicates). */
  resent: number;
  lastError: string | undefined;
  /** MQTT messages carrying readings handed to the client: a batch is one, a lone reading is one. */
  messagesSent: number;
  /** Readings in those messages (a batch counts each of its readings; a split batch's readings count again). */
  readingsSent: number;
  /** Batches the broker refused for good that were split in halves to isolate the refused reading. */
  batchesSplit: number;
  /** Bytes of those messages written to the broker (payload + topic; MQTT framing not counted). */
  bytesSent: number;
  /** Messages the broker refused for now (PUBACK 0x97 quota exceeded …): kept and sent again after a backoff. */
  refusedTransient: number;
  /** Messages the broker refused for good (a lone reading goes to dead letters, a batch is split). */
  refusedPermanent: number;
  /** Seconds the broker has been refusing messages for now with no ack since (0 when it is not). */
  refusingForS: number;
  /** The last refusal, e.g. "broker refused the PUBLISH: 0x97 Quota exceeded". */
  lastRefusal: string | undefined;
}
