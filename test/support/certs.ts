/**
 * makeCerts writes a throwaway PKI with openssl for TLS tests: a CA, a server certificate for
 * 127.0.0.1 and localhost (subjectAltName, as verifiers require), a client certificate signed by
 * the same CA (mutual TLS), and a second, unrelated CA (the "wrong CA" case). EC P-256 keys keep
 * generation fast. The files are world-readable: they are test material, never real secrets.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { which } from "./tools.ts";

export interface TestCerts {
  dir: string;
  ca: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  const bin = which("openssl");
  if (!bin) throw new Error("openssl is not installed (apt-get install openssl)");
  const r = Bun.spawnSync([bin, ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed:\n${r.stderr.toString()}`);
}

function makeCa(dir: string, name: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      key,
      "-sha256",
      "-days",
      "2",
      "-subj",
      `/CN=fieldrelay test ${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      cert,
    ],
    dir,
  );
  return { cert, key };
}

function makeLeaf(
  dir: string,
  name: string,
  ca: { cert: string; key: string },
  extensions: string[],
): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `${extensions.join("\n")}\n`);
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], dir);
  openssl(["req", "-new", "-key", key, "-subj", `/CN=${name}`, "-out", csr], dir);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      ext,
      "-out",
      cert,
    ],
    dir,
  );
  return { cert, key };
}

export function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "fr-certs-"));
  const ca = makeCa(dir, "ca");
  const other = makeCa(dir, "other-ca");
  const server = makeLeaf(dir, "server", ca, [
    "basicConstraints=CA:FALSE",
    "keyUsage=digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  const client = makeLeaf(dir, "client", ca, [
    "basicConstraints=CA:FALSE",
    "keyUsage=digitalSignature",
    "extendedKeyUsage=clientAuth",
  ]);
  // mosquitto started as root drops to the mosquitto user: let it read the (throwaway) files.
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  return {
    dir,
    ca: ca.cert,
    caKey: ca.key,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    otherCa: other.cert,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
