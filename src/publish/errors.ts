import { FieldrelayError } from "../errors/index.ts";

/** PublishTlsFileError: a file named in [mqtt.tls] cannot be read. */
export class PublishTlsFileError extends FieldrelayError {
  constructor(
    readonly key: "ca" | "cert" | "key",
    readonly file: string,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    super(`cannot read mqtt.tls.${key} file ${file}${code ? ` (${code})` : ""}`, {
      hint: `check that ${file} exists and is readable by the fieldrelay user, or fix mqtt.tls.${key} in the config`,
      context: { file, key, code },
      cause,
    });
  }
}

/** PublisherNotConnectedError: send() was called while there is no broker connection. */
export class PublisherNotConnectedError extends FieldrelayError {
  constructor(topic: string, why: "disconnected" | "stopping") {
    super(
      why === "stopping"
        ? `cannot send to ${topic}: the publisher is stopping`
        : `cannot send to ${topic}: not connected to the broker`,
      { hint: "retry after the publisher reconnects (see stats().connected)", context: { topic, why } },
    );
  }
}
