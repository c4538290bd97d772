// w13 http client in Node.js: N GETs of a small response with 10 in
// flight through one keep-alive http.Agent (10 sockets), against the
// server at 127.0.0.1:PORT (bench/node/w12_http_server.js in run.sh), as
// bench/w13_http_client.lua and bench/py/w13_http_client.py do; every
// response's status and body are checked and counted.
//   node bench/node/w13_http_client.js N PORT
'use strict';
const http = require('http');
const b = require('./common');
const N = b.count(20000);
const PORT = parseInt(process.argv[3], 10) || 8080;
const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });

function get() {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: PORT, path: '/',
                               agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${res.statusCode}`));
        else resolve(Buffer.concat(chunks).length);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

(async () => {
  let left = N, ok = 0;
  async function worker() {
    while (left > 0) {
      left--;
      if (await get() > 0) ok++;
    }
  }
  const t0 = b.now();
  const ws = [];
  for (let i = 0; i < 10; i++) ws.push(worker());
  await Promise.all(ws);
  const seconds = b.now() - t0;
  agent.destroy();
  if (ok !== N) {
    process.stderr.write(`w13_http_client: ${ok} responses of ${N}\n`);
    process.exit(1);
  }
  b.report('w13_http_client', N, seconds);
})().catch((e) => { process.stderr.write(`${e}\n`); process.exit(1); });
