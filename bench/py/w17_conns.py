"""w17 connections: N connections to a stream server in this process, each
of which has echoed one 1000-byte line and stays open, idle. Reports the
memory each connection holds, both ends together: the growth of the
process's resident set (VmRSS) over the N connections, after a full
collection. ops_per_sec is connections made per second. The Lua twin is
bench/w17_conns.lua.

    python3 bench/py/w17_conns.py [N] [--uvloop]
"""
import asyncio
import gc
import time

from common import rss, run

LINE = b"x" * 999 + b"\n"


async def main(n, name):
    served, clients = [], []

    async def handle(r, w):
        w.write(await r.readline())
        await w.drain()
        served.append((r, w))  # kept open, idle

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]

    async def connect():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(LINE)
        assert await r.readline() == LINE, "w17_conns: a bad echo"
        clients.append((r, w))

    for _ in range(20):  # the first ones grow shared tables
        await connect()
    gc.collect()
    rss0 = rss()
    t0 = time.perf_counter()
    for _ in range(n):
        await connect()
    seconds = time.perf_counter() - t0
    gc.collect()
    rss1 = rss()
    for _, w in clients + served:
        w.close()
    srv.close()
    await srv.wait_closed()
    print("%s/w17_conns %d %.4f %.0f bytes_per_conn=%d"
          % (name, n, seconds, n / seconds, (rss1 - rss0) // n))


run(main, 450)
