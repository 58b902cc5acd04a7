import { describe, expect, it } from "vitest";
import { AuthLimiter, clientKey } from "../../src/http/index.ts";

function limiter(o: { maxClients?: number } = {}) {
  let now = 0;
  const l = new AuthLimiter({ now: () => now, ...o });
  return { l, advance: (ms: number) => (now += ms) };
}

describe("AuthLimiter client keys", () => {
  it("counts every loopback address, v4, v6 and v4-mapped, as one client", () => {
    for (const a of ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"])
      expect(clientKey(a)).toBe("loopback");
  });
  it("counts an IPv4 address alone, a v4-mapped one as its IPv4, and an IPv6 address by its /64", () => {
    expect(clientKey("192.168.1.20")).toBe("192.168.1.20");
    expect(clientKey("::ffff:192.168.1.20")).toBe("192.168.1.20");
    expect(clientKey("2001:db8:0:12::1")).toBe("2001:db8:0:12::/64");
    expect(clientKey("2001:db8:0:12:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:0:12::/64");
    expect(clientKey("fe80::1")).toBe("fe80:0:0:0::/64");
    expect(clientKey(undefined)).toBe("unknown");
  });
});

describe("AuthLimiter", () => {
  it("allows 5 wrong tokens, then makes the client wait 1 s, doubling to at most 15 min", () => {
    const { l, advance } = limiter();
    for (let i = 0; i < 4; i++) expect(l.failure("10.0.0.1")).toBe(0);
    expect(l.check("10.0.0.1")).toEqual({ allowed: true });
    const waits = [l.failure("10.0.0.1")];
    expect(l.check("10.0.0.1")).toEqual({ allowed: false, retryAfterS: 1 });
    for (let i = 0; i < 14; i++) {
      advance(waits.at(-1)!);
      expect(l.check("10.0.0.1").allowed).toBe(true);
      waits.push(l.failure("10.0.0.1"));
    }
    expect(waits.slice(0, 6)).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000]);
    expect(Math.max(...waits)).toBe(15 * 60_000);
    expect(waits.at(-1)).toBe(15 * 60_000);
  });

  it("keeps other clients free while one waits", () => {
    const { l } = limiter();
    for (let i = 0; i < 5; i++) l.failure("10.0.0.1");
    expect(l.check("10.0.0.1").allowed).toBe(false);
    expect(l.check("10.0.0.2").allowed).toBe(true);
  });

  it("starts over after a right token", () => {
    const { l } = limiter();
    for (let i = 0; i < 4; i++) l.failure("10.0.0.1");
    l.success("10.0.0.1");
    for (let i = 0; i < 4; i++) expect(l.failure("10.0.0.1")).toBe(0);
  });

  it("forgets a client after an hour without a wrong token, not while it still waits", () => {
    const { l, advance } = limiter();
    for (let i = 0; i < 20; i++) {
      const wait = l.failure("10.0.0.1");
      advance(wait);
    }
    expect(l.failure("10.0.0.1")).toBe(15 * 60_000);
    advance(59 * 60_000);
    expect(l.check("10.0.0.1").allowed).toBe(true);
    expect(l.failure("10.0.0.1")).toBe(15 * 60_000); // 59 min quiet: still counted
    advance(60 * 60_000);
    expect(l.check("10.0.0.1").allowed).toBe(true);
    expect(l.size).toBe(0);
    expect(l.failure("10.0.0.1")).toBe(0);
  });

  it("keeps at most maxClients, dropping the one whose last wrong token is oldest", () => {
    const { l } = limiter({ maxClients: 3 });
    for (const a of ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) for (let i = 0; i < 5; i++) l.failure(a);
    l.failure("10.0.0.1"); // now the most recent
    l.failure("10.0.0.4");
    expect(l.size).toBe(3);
    expect(l.check("10.0.0.2").allowed).toBe(true); // dropped
    expect(l.check("10.0.0.1").allowed).toBe(false);
    expect(l.check("10.0.0.3").allowed).toBe(false);
  });
});
