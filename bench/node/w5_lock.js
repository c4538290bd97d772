// w5 lock in Node.js: 100 async functions x N/100 acquisitions of one
// FIFO lock (release hands it to the first waiter) with one loop turn
// inside.
'use strict';
const b = require('./common');
const N = b.count(100000);
const TASKS = 100, ROUNDS = Math.floor(N / TASKS);

class Lock {
  constructor() { this.locked = false; this.waiters = []; this.wh = 0; }
  acquire() {
    if (!this.locked) { this.locked = true; return undefined; }
    return new Promise((r) => this.waiters.push(r));
  }
  release() {
    if (this.wh < this.waiters.length) {
      const r = this.waiters[this.wh];
      this.waiters[this.wh++] = undefined;
      r();
    } else this.locked = false;
  }
}

(async () => {
  const lock = new Lock();
  let inside = 0, turns = 0;
  async function worker() {
    for (let i = 0; i < ROUNDS; i++) {
      await lock.acquire();
      if (++inside !== 1) throw new Error('w5_lock: two inside');
      await b.tick();
      turns++;
      inside--;
      lock.release();
    }
  }
  const t0 = b.now(), c0 = b.cpu();
  const ws = [];
  for (let i = 0; i < TASKS; i++) ws.push(worker());
  await Promise.all(ws);
  const seconds = b.now() - t0;
  if (turns !== TASKS * ROUNDS) throw new Error('w5_lock: bad count');
  b.report('w5_lock', TASKS * ROUNDS, seconds,
    `cpu=${(b.cpu() - c0).toFixed(4)}`);
})();
