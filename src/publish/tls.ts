/**
 * TLS material for the broker connection, read from the files named in [mqtt.tls]. Certificate
 * verification is always on unless mqtt.tls.insecure = true (the publisher then warns at every
 * connect). Read at start (fail fast on a typo) and again at every connect, so a rotated
 * certificate is picked up without a restart.
 */
import { readFileSync } from "node:fs";
import type { Config } from "../config/index.ts";
import { PublishTlsFileError } from "./errors.ts";

export type TlsConfig = Config["mqtt"]["tls"];

export interface TlsConnectOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  ALPNProtocols?: string[];
  servername?: string;
}

function read(key: "ca" | "cert" | "key", file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new PublishTlsFileError(key, file, error);
  }
}

/** loadTls reads the configured files; throws PublishTlsFileError naming the file it could not read. */
export function loadTls(tls: TlsConfig): TlsConnectOptions {
  const options: TlsConnectOptions = { rejectUnauthorized: !tls.insecure };
  if (tls.ca) options.ca = read("ca", tls.ca);
  if (tls.cert) options.cert = read("cert", tls.cert);
  if (tls.key) options.key = read("key", tls.key);
  if (tls.alpn.length > 0) options.ALPNProtocols = [...tls.alpn];
  if (tls.servername) options.servername = tls.servername;
  return options;
}
