"""w15 workqueue: the twin of bench/w15_workqueue.lua with redis-py's
asyncio client: the same reliable-queue pattern written directly (a job
hash, LPUSH to a queue, workers BLMOVE into a processing list of their
own, then store the result, LREM and count it in one MULTI/EXEC), 4
worker processes running 50 jobs at once each, N jobs enqueued from 50
tasks; the time runs from the first enqueue to Redis counting N done.
There is no lease renewal, retry or delayed-job machinery here, so it
does less work per job than asyncio.workqueue."""
import asyncio
import os
import subprocess
import sys
import time
import uuid

import redis.asyncio as aioredis

from common import run

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
P = "pyw15:"
WORKERS, TASKS, CONCURRENCY = 4, 50, 50


async def worker_main():
    r = aioredis.from_url(URL, max_connections=CONCURRENCY + 10)
    wid = uuid.uuid4().hex
    proc = P + "proc:" + wid

    async def slot():
        while True:
            jid = await r.blmove(P + "queue", proc, 1, "RIGHT", "LEFT")
            if jid is None:
                continue
            jk = P + "job:" + jid.decode()
            args = await r.hget(jk, "args")
            result = args  # echo
            async with r.pipeline(transaction=True) as p:
                p.hset(jk, mapping={"state": "done", "result": result})
                p.lrem(proc, 1, jid)
                p.hincrby(P + "stats", "done", 1)
                await p.execute()

    tasks = [asyncio.create_task(slot()) for _ in range(CONCURRENCY)]
    print("ready", flush=True)
    await asyncio.gather(*tasks)


async def main(n, name):
    r = aioredis.from_url(URL)
    keys = await r.keys(P + "*")
    if keys:
        await r.delete(*keys)
    env = dict(os.environ)
    workers = []
    for _ in range(WORKERS):
        w = subprocess.Popen([sys.executable, __file__, "worker"]
                             + (["--uvloop"] if name == "uvloop" else []),
                             stdout=subprocess.PIPE, env=env)
        assert w.stdout.readline() == b"ready\n"
        workers.append(w)
    t0, c0 = time.monotonic(), time.process_time()
    ids = [None] * (n + 1)

    async def producer(first):
        for i in range(first, n + 1, TASKS):
            jid = uuid.uuid4().hex
            ids[i] = jid
            async with r.pipeline(transaction=True) as p:
                p.hset(P + "job:" + jid, mapping={
                    "fn": "echo", "args": str(i), "state": "queued"})
                p.lpush(P + "queue", jid)
                await p.execute()

    await asyncio.gather(*(producer(i) for i in range(1, TASKS + 1)))
    while int(await r.hget(P + "stats", "done") or 0) < n:
        await asyncio.sleep(0.002)
    seconds, cpu = time.monotonic() - t0, time.process_time() - c0
    for i in range(1, n + 1):
        got = await r.hget(P + "job:" + ids[i], "result")
        if int(got) != i:
            raise RuntimeError(f"w15: job {i} result {got!r}")
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait()
    await (r.aclose() if hasattr(r, "aclose") else r.close())
    print(f"{name}/w15_workqueue {n} {seconds:.4f} {n / seconds:.0f} "
          f"cpu={cpu:.4f}")


if __name__ == "__main__":
    if "worker" in sys.argv:
        if "--uvloop" in sys.argv:
            import uvloop
            uvloop.install()
        asyncio.run(worker_main())
    else:
        run(main, 20000)
