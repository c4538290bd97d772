// w3 queue in Node.js: one producer, four consumers, an unbounded queue
// whose get() returns at once when an item is there and otherwise a
// promise that the next put() resolves with its item.
'use strict';
const b = require('./common');
const N = b.count(500000);
const CONSUMERS = 4;

class Queue {
  constructor() {
    this.items = []; this.ih = 0; this.getters = []; this.gh = 0;
  }
  put(v) {
    if (this.gh < this.getters.length) {
      const r = this.getters[this.gh];
      this.getters[this.gh++] = undefined;
      r(v);
    } else this.items.push(v);
  }
  get() {
    if (this.ih < this.items.length) {
      const v = this.items[this.ih];
      this.items[this.ih++] = undefined;
      return v;
    }
    return new Promise((r) => this.getters.push(r));
  }
}

(async () => {
  const q = new Queue();
  async function consumer() {
    let sum = 0, got = 0;
    for (;;) {
      const item = await q.get();
      if (item === null) return [sum, got];
      sum += item; got++;
    }
  }
  async function producer() {
    for (let i = 1; i <= N; i++) await q.put(i);
    for (let i = 0; i < CONSUMERS; i++) await q.put(null);
  }
  const t0 = b.now(), c0 = b.cpu();
  const cs = [];
  for (let i = 0; i < CONSUMERS; i++) cs.push(consumer());
  await producer();
  let sum = 0, got = 0;
  for (const c of cs) { const [s, n] = await c; sum += s; got += n; }
  const seconds = b.now() - t0;
  if (sum !== N * (N + 1) / 2 || got !== N) throw new Error('w3: bad sums');
  b.report('w3_queue', N, seconds, `cpu=${(b.cpu() - c0).toFixed(4)}`);
})();
