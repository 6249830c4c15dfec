/**
 * Issue 23.21: a server that accepts connections and never answers (a hung PostgreSQL, a stuck pooler, a wrong
 * port on a TCP proxy) hung `db status`, `validate` and `doctor` forever. Every connection the CLI opens gives up
 * after PGCONNECT_TIMEOUT (default 10 s) with one line naming the address. The silent server here is a real TCP
 * listener that accepts and reads, and never writes a byte.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tsdbAsync } from "../fixtures/cli";

describe("a server that accepts connections and never answers", () => {
  let server: net.Server;
  let port: number;
  const sockets: net.Socket[] = [];
  beforeAll(async () => {
    server = net.createServer((socket) => {
      sockets.push(socket);
      socket.on("data", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  test.each([
    ["db status", ["db", "status", "--no-timescaledb"]],
    ["data validate", ["data", "validate"]],
    ["doctor", ["doctor"]],
  ])("tsdb %s gives up after PGCONNECT_TIMEOUT with one line naming the address", async (_name, args) => {
    const started = Date.now();
    const result = await tsdbAsync([...args, "--url", `postgresql://someone@127.0.0.1:${port}/market?sslmode=disable`], { PGCONNECT_TIMEOUT: "2", PGPASSWORD: "x" });
    const seconds = (Date.now() - started) / 1000;
    expect(`${result.stdout}${result.stderr}`).toContain(`127.0.0.1:${port} accepted the connection but did not complete the PostgreSQL handshake within 2 s`);
    expect(result.code).not.toBe(0);
    // Well under the fixture's 120 s kill: the command ended by itself.
    expect(seconds).toBeLessThan(60);
  }, 130_000);

  test("tsdb db status gives up when a server completes the handshake and then never answers a query (a stuck pooler)", async () => {
    // Speaks just enough of the protocol: AuthenticationOk and ReadyForQuery after the startup message, then silence.
    const stuck = net.createServer((socket) => {
      sockets.push(socket);
      let greeted = false;
      socket.on("data", () => {
        if (greeted) return;
        greeted = true;
        const auth = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]); // 'R', length 8, AuthenticationOk
        const ready = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]); // 'Z', length 5, idle
        socket.write(Buffer.concat([auth, ready]));
      });
    });
    await new Promise<void>((resolve) => stuck.listen(0, "127.0.0.1", resolve));
    const stuckPort = (stuck.address() as net.AddressInfo).port;
    try {
      const result = await tsdbAsync(["db", "status", "--no-timescaledb", "--url", `postgresql://someone@127.0.0.1:${stuckPort}/market?sslmode=disable`], { PGCONNECT_TIMEOUT: "2" });
      expect(`${result.stdout}${result.stderr}`).toContain(`127.0.0.1:${stuckPort} accepted the connection but did not answer a query within 2 s`);
      expect(result.code).not.toBe(0);
    } finally {
      await new Promise((resolve) => stuck.close(resolve));
    }
  }, 130_000);
});
