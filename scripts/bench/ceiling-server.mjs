// The bench's ceiling: the least a Node server can do for the same workload — node:http, read the
// body, JSON.parse it, answer 200 {"accepted":N}. Plain node (no tsx) and no framework, so
// "product entries per CPU-second ÷ this" says how much of the CPU goes to the product's own work.
// With CEILING_FSYNC_FILE set, each body is also appended to that file and fsync'd before the
// answer, as a durable log would (group commit aside).
//
//   PORT=… [CEILING_FSYNC_FILE=…] node scripts/bench/ceiling-server.mjs
import { open } from 'node:fs/promises';
import http from 'node:http';

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('ceiling-server: set PORT');
  process.exit(2);
}
const file = process.env.CEILING_FSYNC_FILE ? await open(process.env.CEILING_FSYNC_FILE, 'a') : undefined;
// Bounded like any server's body; the workload's bodies are ~200 KB.
const MAX_BODY = 16 * 1024 * 1024;

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    void (async () => {
      try {
        const body = Buffer.concat(chunks);
        const parsed = JSON.parse(body.toString('utf8'));
        const n = Array.isArray(parsed) ? parsed.length : 0;
        if (file) {
          await file.write(body);
          await file.sync();
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(`{"accepted":${n}}`);
      } catch (e) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(e) }));
      }
    })();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');

let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  server.close(() => void (file ? file.close() : Promise.resolve()).then(() => process.exit(0)));
  server.closeIdleConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
