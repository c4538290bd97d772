// Shared by the Node.js twins of the workloads: N, the clock, the
// result line `node/<name> N seconds ops_per_sec ...`, VmRSS.
'use strict';
const fs = require('fs');

exports.count = (dflt) => {
  const n = process.argv[2] ? parseInt(process.argv[2], 10) : dflt;
  return Number.isInteger(n) && n > 0 ? n : dflt;
};
exports.now = () => Number(process.hrtime.bigint()) / 1e9;
exports.cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
exports.report = (name, n, seconds, extra) => {
  process.stdout.write(`node/${name} ${n} ${seconds.toFixed(4)} ` +
    `${Math.round(n / seconds)}${extra ? ' ' + extra : ''}\n`);
};
exports.rss = () => {
  const m = /VmRSS:\s*(\d+)\s*kB/.exec(
    fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? parseInt(m[1], 10) * 1024 : process.memoryUsage().rss;
};
// asyncio.sleep(0): one turn of the event loop
exports.tick = () => new Promise((resolve) => setImmediate(resolve));
exports.sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));
