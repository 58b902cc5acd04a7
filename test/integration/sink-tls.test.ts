/**
 * The sink over TLS to a real PostgreSQL that refuses plain TCP and wants a client certificate
 * (pg_hba hostssl … clientcert=verify-ca): postgres.ca / cert / key, and the operator's mistakes
 * (wrong CA, no client certificate, a CA without verification, an unreadable file) as one line
 * each with what to do.
 */
import { SQL } from "bun";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/index.ts";
import { startSink, validateSinkConfig } from "../../src/sink/index.ts";
import { makeCerts, type TestCerts } from "../support/certs.ts";
import { run, Workspace } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { POSTGRES, PostgresCluster } from "../support/postgres.ts";
import { MOSQUITTO, missing, OPENSSL } from "../support/tools.ts";

const skip = missing(MOSQUITTO, POSTGRES, OPENSSL);

describe.skipIf(skip)("sink → PostgreSQL over TLS", () => {
  let certs: TestCerts;
  let pg: PostgresCluster;
  let broker: MosquittoBroker;
  let publisher: MqttClient;
  let ws: Workspace;

  beforeAll(async () => {
    certs = makeCerts();
    pg = await PostgresCluster.start({
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
    });
    broker = await MosquittoBroker.start();
    publisher = await connectAsync(broker.url, { protocolVersion: 5, clientId: "tls-pub" });
    ws = new Workspace("fr-sink-tls-");
  }, 60_000);

  afterAll(async () => {
    await publisher?.endAsync(true);
    await broker?.close();
    await pg?.close();
    certs?.remove();
    ws?.cleanup();
  });

  const sinkRun = (postgres: Record<string, unknown>, name: string) =>
    run(
      "source",
      [
        "sink",
        "-c",
        ws.writeConfig(
          { postgres: { url: pg.url(), ...postgres }, health: { listen: "" }, mqtt: { url: broker.url } },
          name,
        ),
      ],
      {
        env: { FIELDRELAY_SINK_POSTGRES_PASSWORD: pg.password },
      },
    );

  it("verify-full with postgres.ca and a client certificate: readings land over TLS as that client", async () => {
    const config = validateSinkConfig(
      {
        mqtt: { url: broker.url, client_id: "sink-tls", topic_prefix: "tls" },
        postgres: {
          url: pg.url(),
          tls: "verify-full",
          ca: certs.ca,
          cert: certs.clientCert,
          key: certs.clientKey,
        },
        sink: { commit_interval_ms: 20 },
        health: { listen: "" },
      },
      "test",
    );
    config.postgres.password = pg.password;
    const sink = await startSink({ config, log: createLogger({ level: "fatal" }), version: "test" });
    if (!sink) throw new Error("sink did not start");
    try {
      const deadline = Date.now() + 15_000;
      while (!sink.status().consumer.connected) {
        if (Date.now() > deadline) throw new Error("sink never connected to the broker");
        await Bun.sleep(20);
      }
      await Bun.sleep(100); // SUBACK
      const envelope = {
        seq: 1,
        device: "pi-tls",
        stream: "env",
        ts: "2026-11-30T05:00:00.000Z",
        tq: "ntp",
        te_ms: 5,
        values: { temperature_c: 21.5 },
      };
      await publisher.publishAsync("tls/pi-tls/env", JSON.stringify(envelope), { qos: 1 });
      const db = new SQL({
        url: pg.url(),
        password: pg.password,
        tls: { ca: Bun.file(certs.ca), cert: Bun.file(certs.clientCert), key: Bun.file(certs.clientKey) },
        max: 1,
      });
      try {
        let rows = 0;
        while (rows === 0) {
          if (Date.now() > deadline) throw new Error("the reading never landed");
          await Bun.sleep(50);
          rows = Number(
            (await db`SELECT count(*) AS n FROM readings WHERE device = 'pi-tls' AND seq = 1`)[0].n,
          );
        }
        expect(rows).toBe(1);
        // Every connection of the sink is TLS and presents the client certificate.
        const sessions = await db.unsafe(
          `SELECT s.ssl, s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
            WHERE a.usename = 'fieldrelay' AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'`,
        );
        expect(sessions.length).toBeGreaterThan(0);
        for (const s of sessions) expect(s).toMatchObject({ ssl: true, client_dn: "/CN=client" });
      } finally {
        await db.close();
      }
    } finally {
      await sink.stop(2000);
    }
  });

  it("a server certificate from another CA: exit 69, one line naming postgres.ca, no stack trace", async () => {
    const r = await sinkRun(
      { tls: "verify-full", ca: certs.otherCa, cert: certs.clientCert, key: certs.clientKey },
      "wrong-ca.toml",
    );
    expect(r.code).toBe(69);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/certificate did not verify: .*set postgres\.ca to the CA that signed/);
  });

  it("a server that wants a client certificate, and none is set: exit 69 saying to set postgres.cert and key", async () => {
    const r = await sinkRun({ tls: "verify-full", ca: certs.ca }, "no-client.toml");
    expect(r.code).toBe(69);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /client certificate.* — the server wants a client certificate: set postgres\.cert and postgres\.key/,
    );
  });

  it("config mistakes exit 78 naming the key: ca without verify-full, cert without key, an unreadable file", async () => {
    const r = await sinkRun(
      { tls: "prefer", ca: certs.ca, cert: certs.clientCert, key: `${certs.dir}/missing.key` },
      "bad.toml",
    );
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(
      /postgres\.ca: is used to verify the server, which tls = "prefer" does not do; set tls = "verify-full"/,
    );
    expect(r.stderr).toMatch(
      /postgres\.cert: a client certificate needs TLS for certain; set tls = "require" or "verify-full"/,
    );
    expect(r.stderr).toMatch(/postgres\.key: cannot read .*missing\.key \(ENOENT\)/);
    const half = await sinkRun({ tls: "require", cert: certs.clientCert }, "half.toml");
    expect(half.code).toBe(78);
    expect(half.stderr).toMatch(/postgres\.cert: cert and key go together/);
    expect(`${r.stderr}${half.stderr}`).not.toMatch(/\n\s+at /);
  });
});
