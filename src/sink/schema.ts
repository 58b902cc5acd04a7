/**
 * The sink's tables, created and migrated by the sink itself. Every change is a new numbered
 * migration appended to MIGRATIONS (never edit an applied one); `<table>_migrations` records which
 * ran. Migrations run in one transaction under an advisory lock, so several sinks starting at once
 * apply each exactly once; a database migrated by a newer sink (a version this one does not know)
 * is refused rather than written with an older idea of the schema.
 *
 *   <table>              one row per reading, PRIMARY KEY (device, seq): the edge's at-least-once
 *                        resends and broker redeliveries land once (INSERT … ON CONFLICT DO NOTHING).
 *                        ts/tq/te_ms are the best time known; boot + mono_ms (present while the
 *                        time could still improve) let a later clock message re-stamp the row.
 *   <table>_clock        per (device, boot): the union of every clock anchor received, so a
 *                        correction that arrives before its readings still applies to them.
 *   <table>_dead_letter  messages on the subscribed topics that are not readings or clock messages
 *                        (malformed, foreign, forged): kept with the reason, never blocking.
 *
 * Why not a TimescaleDB hypertable: a hypertable's unique indexes must contain its time column, and
 * exactly-once rests on UNIQUE (device, seq) while ts still moves when a correction arrives. Fleets
 * that outgrow one table partition by device (hash) or seq, which keeps the key (README "Scale").
 */
import type { SQL } from "bun";
import { FieldrelayError } from "../errors/index.ts";

export interface Migration {
  version: number;
  description: string;
  statements: (t: TableNames) => string[];
}

export interface TableNames {
  readings: string;
  clock: string;
  deadLetter: string;
  migrations: string;
}

export function tableNames(table: string): TableNames {
  return {
    readings: table,
    clock: `${table}_clock`,
    deadLetter: `${table}_dead_letter`,
    migrations: `${table}_migrations`,
  };
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "readings, clock anchors, dead letters",
    statements: (t) => [
      `CREATE TABLE ${t.readings} (
        device      text NOT NULL,
        seq         bigint NOT NULL,
        stream      text NOT NULL,
        ts          timestamptz NOT NULL,
        tq          text NOT NULL CHECK (tq IN ('ntp', 'rtc', 'unsynced', 'corrected')),
        te_ms       bigint,
        boot        uuid,
        mono_ms     double precision,
        "values"    jsonb NOT NULL,
        anomaly     boolean NOT NULL DEFAULT false,
        time_note   text,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (device, seq)
      )`,
      `CREATE INDEX ${t.readings}_boot ON ${t.readings} (device, boot) WHERE boot IS NOT NULL`,
      `CREATE INDEX ${t.readings}_ts ON ${t.readings} (ts)`,
      `CREATE TABLE ${t.clock} (
        device      text NOT NULL,
        boot        uuid NOT NULL,
        anchors     jsonb NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (device, boot)
      )`,
      `CREATE TABLE ${t.deadLetter} (
        id          bigserial PRIMARY KEY,
        topic       text NOT NULL,
        payload     bytea NOT NULL,
        kind        text NOT NULL,
        reason      text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** SchemaError: the database holds a schema this sink cannot use. */
export class SchemaError extends FieldrelayError {}

/** A fixed advisory-lock key for migrations ("frsink" in ASCII). */
const MIGRATION_LOCK = 0x667273696e6b;

/** Bring the tables to SCHEMA_VERSION; returns the versions applied now (empty when up to date). */
export async function migrate(sql: SQL, table: string, migrations = MIGRATIONS): Promise<number[]> {
  const t = tableNames(table);
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx.unsafe(
      `CREATE TABLE IF NOT EXISTS ${t.migrations} (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const rows = (await tx.unsafe(`SELECT version FROM ${t.migrations} ORDER BY version`)) as Array<{
      version: number;
    }>;
    const applied = new Set(rows.map((r) => Number(r.version)));
    const known = new Set(migrations.map((m) => m.version));
    const unknown = [...applied].filter((v) => !known.has(v));
    if (unknown.length > 0) {
      throw new SchemaError(
        `table ${table} has schema version ${Math.max(...unknown)}, newer than this sink knows (${migrations.at(-1)?.version})`,
        { hint: "upgrade fieldrelay on this server to the version the other sinks run", context: { table } },
      );
    }
    const done: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      for (const statement of m.statements(t)) await tx.unsafe(statement);
      await tx.unsafe(`INSERT INTO ${t.migrations} (version, description) VALUES ($1, $2)`, [
        m.version,
        m.description,
      ]);
      done.push(m.version);
    }
    return done;
  });
}
