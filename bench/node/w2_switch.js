// w2 switch in Node.js: N ping-pong round trips between two async
// functions through a fresh promise per message (a "future": the promise
// and its resolve function).
'use strict';
const b = require('./common');
const N = b.count(200000);

function future() {
  let resolve;
  const p = new Promise((r) => { resolve = r; });
  p.resolve = resolve;
  return p;
}

(async () => {
  let inboxPing = null, inboxPong = future(), trips = 0;
  async function ping() {
    for (let i = 1; i <= N; i++) {
      const out = inboxPong;
      inboxPing = future();
      out.resolve(i);
      const v = await inboxPing;
      if (v !== i) throw new Error('w2_switch: got ' + v);
      trips++;
    }
  }
  async function pong() {
    for (let i = 0; i < N; i++) {
      const v = await inboxPong;
      inboxPong = future();
      inboxPing.resolve(v);
    }
  }
  const t0 = b.now(), c0 = b.cpu();
  const pb = pong();
  const pa = ping();
  await pa;
  await pb;
  const seconds = b.now() - t0;
  if (trips !== N) throw new Error('w2_switch: bad count');
  b.report('w2_switch', N, seconds, `cpu=${(b.cpu() - c0).toFixed(4)}`);
})();
