// w8 gather/wait in Node.js: N rounds of 100 async functions, one
// finishing at the next loop turn and 99 sleeping an hour (a timer each);
// Promise.race waits for the first, the 99 timers are cleared and their
// functions finish as cancelled (one loop turn).
'use strict';
const b = require('./common');
const N = b.count(1000);
const WIDTH = 100;

function slow() {
  let timer, cancel;
  const p = new Promise((resolve, reject) => {
    timer = setTimeout(() => resolve(0), 3600 * 1000);
    cancel = () => { clearTimeout(timer); reject(new Error('cancelled')); };
  });
  return { p: p.then((v) => v, () => 'cancelled'), cancel };
}

(async () => {
  const t0 = b.now();
  let finished = 0, cancelled = 0;
  for (let r = 0; r < N; r++) {
    const quick = b.tick().then(() => 1);
    const slows = [];
    for (let i = 1; i < WIDTH; i++) slows.push(slow());
    finished += await Promise.race([quick, ...slows.map((s) => s.p)]);
    for (const s of slows) s.cancel();
    await b.tick();
    for (const s of slows) if (await s.p === 'cancelled') cancelled++;
  }
  const seconds = b.now() - t0;
  if (finished !== N || cancelled !== N * (WIDTH - 1))
    throw new Error(`w8: ${finished} finished, ${cancelled} cancelled`);
  b.report('w8_gather_wait', N, seconds);
})();
