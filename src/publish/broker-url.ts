/**
 * The broker URL as mqtt.js connection options, parsed with the WHATWG URL parser. mqtt.js would
 * parse a URL string with the legacy url.parse(), which prints a non-JSON DEP0169 deprecation
 * warning into the journal on every start (#12); handing it options instead skips that. Pure.
 */
import type { IClientOptions } from "mqtt";

const DEFAULT_PORTS: Record<string, number> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };

export function brokerOptions(url: string): IClientOptions {
  const u = new URL(url);
  const protocol = u.protocol.replace(/:$/, "") as NonNullable<IClientOptions["protocol"]>;
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const options: IClientOptions = {
    protocol,
    host,
    hostname: host,
    port: u.port === "" ? (DEFAULT_PORTS[protocol] ?? 1883) : Number(u.port),
  };
  if (protocol === "ws" || protocol === "wss") options.path = `${u.pathname}${u.search}`;
  if (u.username !== "") options.username = decodeURIComponent(u.username);
  if (u.password !== "") options.password = decodeURIComponent(u.password);
  return options;
}
