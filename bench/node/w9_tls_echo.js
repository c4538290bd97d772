// w9 tls in Node.js: w7's echo server over TLS on 127.0.0.1:PORT (tls,
// the data event writes each chunk back), exiting once CONNS connections
// closed.
//   node bench/node/w9_tls_echo.js N PORT CONNS CERT KEY
'use strict';
const fs = require('fs');
const tls = require('tls');
const PORT = parseInt(process.argv[3] || '8888', 10);
const CONNS = parseInt(process.argv[4] || '50', 10);
let closed = 0;
const server = tls.createServer({
  cert: fs.readFileSync(process.argv[5]),
  key: fs.readFileSync(process.argv[6]),
}, (s) => {
  s.setNoDelay(true);
  s.on('data', (d) => s.write(d));
  s.on('end', () => s.end());
  s.on('error', () => {});
  s.on('close', () => { if (++closed === CONNS) server.close(); });
});
server.listen(PORT, '127.0.0.1');
