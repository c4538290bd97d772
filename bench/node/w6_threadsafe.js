// w6 threadsafe in Node.js: a worker thread posts N messages
// (postMessage, each carrying its number) to the main thread, which
// counts them and checks the sum.
'use strict';
const { Worker, isMainThread, parentPort, workerData } =
  require('worker_threads');

if (!isMainThread) {
  parentPort.once('message', () => {
    for (let i = 1; i <= workerData; i++) parentPort.postMessage(i);
  });
} else {
  const b = require('./common');
  const N = b.count(200000);
  const w = new Worker(__filename, { workerData: N });
  let count = 0, sum = 0, t0 = 0;
  w.on('online', () => { t0 = b.now(); w.postMessage('go'); });
  w.on('message', (i) => {
    count++; sum += i;
    if (count === N) {
      const seconds = b.now() - t0;
      if (sum !== N * (N + 1) / 2) throw new Error('w6: bad sum');
      b.report('w6_threadsafe', N, seconds, 'via=postMessage');
      w.terminate();
    }
  });
}
