// w1 spawn in Node.js: N async functions that each wait one loop turn
// (setImmediate) and return their index; Promise.all gathers them.
'use strict';
const b = require('./common');
const N = b.count(200000);

async function one(i) {
  await b.tick();
  return i;
}

(async () => {
  const t0 = b.now(), c0 = b.cpu();
  const tasks = new Array(N);
  for (let i = 0; i < N; i++) tasks[i] = one(i + 1);
  const results = await Promise.all(tasks);
  let sum = 0;
  for (const r of results) sum += r;
  const seconds = b.now() - t0;
  if (sum !== N * (N + 1) / 2) throw new Error('w1_spawn: bad sum');
  b.report('w1_spawn', N, seconds, `cpu=${(b.cpu() - c0).toFixed(4)}`);
})();
