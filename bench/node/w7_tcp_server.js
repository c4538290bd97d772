// w7 tcp in Node.js: an echo server on 127.0.0.1:PORT (net, the data
// event writes each chunk back), exiting once CONNS connections closed.
//   node bench/node/w7_tcp_server.js N PORT CONNS
'use strict';
const net = require('net');
const PORT = parseInt(process.argv[3] || '8888', 10);
const CONNS = parseInt(process.argv[4] || '50', 10);
let closed = 0;
const server = net.createServer((s) => {
  s.setNoDelay(true);
  s.on('data', (d) => s.write(d));
  s.on('end', () => s.end());
  s.on('close', () => { if (++closed === CONNS) server.close(); });
});
server.listen(PORT, '127.0.0.1');
