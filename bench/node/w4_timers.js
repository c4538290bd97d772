// w4 timers in Node.js: N async functions sleeping
// (i * 7919 % 100000) / 100000 s (setTimeout). Overhead over 1 s, and
// memory per sleeping task: V8's heap (heapUsed, after a full collection
// when run with --expose-gc) and VmRSS growth.
'use strict';
const b = require('./common');
const N = b.count(100000);

async function sleeper(i) {
  await b.sleep((i * 7919 % 100000) / 100000);
  return i;
}

function heap() {
  if (global.gc) { global.gc(); global.gc(); }
  return process.memoryUsage().heapUsed;
}

(async () => {
  const heap0 = heap(), rss0 = b.rss();
  const t0 = b.now(), c0 = b.cpu();
  const tasks = new Array(N);
  for (let i = 0; i < N; i++) tasks[i] = sleeper(i + 1);
  await b.tick();
  const heap1 = heap(), rss1 = b.rss();
  let sum = 0;
  for (const t of tasks) sum += await t;
  const seconds = b.now() - t0;
  if (sum !== N * (N + 1) / 2) throw new Error('w4_timers: bad sum');
  b.report('w4_timers', N, seconds,
    `overhead=${(seconds - 1).toFixed(3)} ` +
    `bytes_per_task=${Math.round((heap1 - heap0) / N)} ` +
    `rss_per_task=${Math.round((rss1 - rss0) / N)} ` +
    `cpu=${(b.cpu() - c0).toFixed(3)}`);
})();
