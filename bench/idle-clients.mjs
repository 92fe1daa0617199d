// Opens COUNT idle connections to 127.0.0.1:PORT from source addresses
// 127.0.1.x (25 each), answers one request on each, then holds them all
// idle. MODE: h1 (keep-alive HTTP/1.1), h2 (HTTP/2 with prior knowledge,
// one stream), ws (a WebSocket opened on /ws, then silent). Prints "ready N" once all are open and answered, then holds
// until stdin closes or HOLD seconds pass.
//
// Usage: node idle-clients.mjs MODE PORT COUNT [HOLD]
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

const [mode, port, count, hold = '120'] = process.argv.slice(2);
const PER_ADDRESS = 25;
const source = (i) => {
  const n = Math.floor(i / PER_ADDRESS);
  return `127.0.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`;
};
const held = [];

function h1(i) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  held.push(agent);
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/', agent, localAddress: source(i) }, (response) => {
      if (response.statusCode !== 200) reject(new Error(`status ${response.statusCode}`));
      response.resume();
      response.on('end', resolve);
    });
    request.on('error', reject);
  });
}

function h2(i) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, { localAddress: source(i) });
    held.push(session);
    session.on('error', reject);
    const stream = session.request({ ':path': '/' });
    stream.on('response', (headers) => {
      if (headers[':status'] !== 200) reject(new Error(`status ${headers[':status']}`));
    });
    stream.resume();
    stream.on('end', resolve);
    stream.on('error', reject);
  });
}

function ws(i) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: Number(port), localAddress: source(i) }, () => {
      const key = randomBytes(16).toString('base64');
      socket.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    held.push(socket);
    let head = '';
    const answered = (chunk) => {
      head += chunk;
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', answered);
      socket.on('data', () => {});
      if (head.startsWith('HTTP/1.1 101')) resolve();
      else reject(new Error(`answer ${head.split('\r\n')[0]}`));
    };
    socket.on('data', answered);
    socket.on('error', reject);
  });
}

const open = { h1, h2, ws }[mode];
if (!open) throw new Error(`mode ${mode}: h1, h2 or ws`);
for (let start = 0; start < Number(count); start += 200) {
  const batch = [];
  for (let i = start; i < Math.min(Number(count), start + 200); i++) batch.push(open(i));
  await Promise.all(batch);
}
console.log(`ready ${held.length}`);
const stop = () => process.exit(0);
process.stdin.on('end', stop);
process.stdin.resume();
setTimeout(stop, Number(hold) * 1000);
