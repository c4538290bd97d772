// w17 connections in Node.js: N connections to a net server in this
// process, each of which has echoed one 1000-byte line and stays open,
// idle. Memory per connection, both ends together: VmRSS growth and V8's
// heap (heapUsed, after a full collection when run with --expose-gc).
// ops_per_sec is connections made per second. The Lua twin is
// bench/w17_conns.lua.
//   node --expose-gc bench/node/w17_conns.js [N]
'use strict';
const net = require('net');
const b = require('./common');
const N = b.count(450);
const LINE = 'x'.repeat(999) + '\n';

function memory() {
  if (global.gc) { global.gc(); global.gc(); }
  return [b.rss(), process.memoryUsage().heapUsed];
}

// one line from a socket (it arrives whole or in pieces)
function readLine(sock) {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d) => {
      got += d;
      if (got.endsWith('\n')) {
        sock.off('data', onData);
        sock.off('error', reject);
        resolve(got);
      }
    };
    sock.setEncoding('latin1');
    sock.on('data', onData);
    sock.on('error', reject);
  });
}

(async () => {
  const served = [], clients = [];
  const server = net.createServer(async (s) => {
    s.write(await readLine(s));
    served.push(s); // kept open, idle
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  async function connect() {
    const c = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => {
      c.once('connect', resolve);
      c.once('error', reject);
    });
    c.write(LINE);
    if (await readLine(c) !== LINE) throw new Error('w17_conns: bad echo');
    clients.push(c);
  }
  for (let i = 0; i < 20; i++) await connect(); // shared tables grow
  const [rss0, heap0] = memory();
  const t0 = b.now();
  for (let i = 0; i < N; i++) await connect();
  const seconds = b.now() - t0;
  const [rss1, heap1] = memory();
  for (const s of clients.concat(served)) s.destroy();
  server.close();
  b.report('w17_conns', N, seconds,
    `bytes_per_conn=${Math.floor((rss1 - rss0) / N)} ` +
    `heap_per_conn=${Math.floor((heap1 - heap0) / N)}`);
})();
