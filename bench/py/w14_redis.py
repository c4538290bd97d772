"""w14 redis: the twin of bench/w14_redis.lua on redis-py's asyncio
client (one client, its connection pool), 50 tasks each running N/100
SET+GET pairs against REDIS_URL. N counts the commands."""
import asyncio
import os
import time

import redis.asyncio as aioredis

from common import run

TASKS = 50


async def worker(r, i, pairs_n):
    key = f"w14:{i}"
    for j in range(1, pairs_n + 1):
        v = str(j)
        await r.set(key, v)
        got = await r.get(key)
        if got != v.encode():
            raise RuntimeError(f"w14: GET {key} -> {got!r}, expected {v}")


async def main(n, name):
    r = aioredis.from_url(os.environ.get("REDIS_URL",
                                         "redis://127.0.0.1:6379/0"))
    await r.ping()
    per = n // (2 * TASKS)
    t0, c0 = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker(r, i, per) for i in range(1, TASKS + 1)))
    seconds, cpu = time.monotonic() - t0, time.process_time() - c0
    await (r.aclose() if hasattr(r, "aclose") else r.close())
    total = per * TASKS * 2
    print(f"{name}/w14_redis {total} {seconds:.4f} {total / seconds:.0f} "
          f"cpu={cpu:.4f}")


run(main, 200000)
