"""w13 http client, aiohttp's twin of bench/w13_http_client.lua:
python3 w13_http_client.py N PORT [--uvloop]"""
import asyncio
import sys

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
import time

import aiohttp


async def main(n, port):
    url = "http://127.0.0.1:%d/" % port
    left = n

    async with aiohttp.ClientSession() as session:
        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                async with session.get(url) as resp:
                    assert len(await resp.read()) > 0

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(10)))
        dt = time.perf_counter() - t0
    impl = "uvloop" if "--uvloop" in sys.argv else "asyncio"
    print("%s/w13_http_client %d %.6f %.1f" % (impl, n, dt, n / dt))


if "--uvloop" in sys.argv:
    import uvloop
    uvloop.install()
asyncio.run(main(int(ARGS[0]), int(ARGS[1])))
