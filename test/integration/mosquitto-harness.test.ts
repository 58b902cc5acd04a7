import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

const skip = missing(MOSQUITTO);

describe.skipIf(skip)("MosquittoBroker test fixture", () => {
  let broker: MosquittoBroker;
  beforeAll(async () => {
    broker = await MosquittoBroker.start();
  });
  afterAll(() => broker?.close());

  it("relays a message on its loopback port, survives a stop/start outage on the same port", async () => {
    const roundTrip = async (payload: string) => {
      const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      const got = new Promise<string>((resolve) => client.on("message", (_t, p) => resolve(p.toString())));
      await client.subscribeAsync("fixture/test", { qos: 1 });
      await client.publishAsync("fixture/test", payload, { qos: 1 });
      const text = await got;
      await client.endAsync();
      return text;
    };
    expect(await roundTrip("one")).toBe("one");
    await broker.stop();
    expect(broker.running).toBe(false);
    await expect(
      mqtt.connectAsync(broker.url, { reconnectPeriod: 0, connectTimeout: 1000 }),
    ).rejects.toThrow();
    await broker.start();
    expect(await roundTrip("two")).toBe("two");
  });
});
