/**
 * The sink's TLS to PostgreSQL, from [postgres]: `tls` picks the mode as libpq's sslmode does
 * (disable | prefer | require | verify-full); `ca` names the CA that signed the server's
 * certificate (a private CA, as managed databases use), `cert` + `key` a client certificate for
 * servers that ask for one (pg_hba `clientcert=`). Files are checked when the config loads, so a
 * typo is a config error (exit 78) naming the key, and read again at start.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import type { ConfigProblem } from "../config/index.ts";
import { FieldrelayError } from "../errors/index.ts";

export type PostgresTlsMode = "disable" | "prefer" | "require" | "verify-full";

export interface PostgresTlsConfig {
  tls: PostgresTlsMode;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

/** What Bun's SQL client takes as `tls`: a mode, or TLS options that imply require/verify-full. */
export type PostgresTlsOption =
  | PostgresTlsMode
  | { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };

/** SinkTlsError: a TLS file vanished between config load and start. */
export class SinkTlsError extends FieldrelayError {}

const FILE_KEYS = ["ca", "cert", "key"] as const;

/** Problems with the [postgres] TLS keys, for the config loader (empty when all is well). */
export function postgresTlsProblems(pg: PostgresTlsConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if ((pg.cert === undefined) !== (pg.key === undefined))
    problems.push({ path: "postgres.cert", message: "cert and key go together: set both or neither" });
  if (pg.ca !== undefined && pg.tls !== "verify-full")
    problems.push({
      path: "postgres.ca",
      message: `is used to verify the server, which tls = "${pg.tls}" does not do; set tls = "verify-full" or remove ca`,
    });
  if (pg.cert !== undefined && (pg.tls === "disable" || pg.tls === "prefer"))
    problems.push({
      path: "postgres.cert",
      message: `a client certificate needs TLS for certain; set tls = "require" or "verify-full" (now "${pg.tls}")`,
    });
  problems.push(...unreadableFiles("postgres", { ca: pg.ca, cert: pg.cert, key: pg.key }));
  return problems;
}

/** A problem for every named PEM file the sink's user cannot read (`<prefix>.<key>`). */
export function unreadableFiles(prefix: string, files: Record<string, string | undefined>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [k, file] of Object.entries(files)) {
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "error";
      problems.push({
        path: `${prefix}.${k}`,
        message: `cannot read ${file} (${code}); give the path of a PEM file the sink's user can read`,
      });
    }
  }
  return problems;
}

/** The `tls` option for Bun's SQL client; reads the files (throws SinkTlsError naming the key). */
export function postgresTls(pg: PostgresTlsConfig): PostgresTlsOption {
  if (pg.ca === undefined && pg.cert === undefined) return pg.tls;
  const read = (k: (typeof FILE_KEYS)[number], file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new SinkTlsError(`cannot read postgres.${k} ${file}`, {
        hint: "restore the file or fix the path in the sink config",
        cause: error,
      });
    }
  };
  // require encrypts without verifying the server (libpq's meaning); verify-full checks the chain
  // (against ca, or the system's CAs without it) and the host name.
  const option: Exclude<PostgresTlsOption, PostgresTlsMode> = {
    rejectUnauthorized: pg.tls === "verify-full",
  };
  if (pg.ca !== undefined) option.ca = read("ca", pg.ca);
  if (pg.cert !== undefined && pg.key !== undefined) {
    option.cert = read("cert", pg.cert);
    option.key = read("key", pg.key);
  }
  return option;
}

/** Node's certificate verification codes: the server is not who postgres.ca says it should be. */
const VERIFY_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
]);

/** True when the error is the server's certificate failing verification (retrying will not fix it). */
export function isCertificateRejection(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && VERIFY_CODES.has(code);
}
