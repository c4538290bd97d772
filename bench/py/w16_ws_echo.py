"""w16 websocket echo, aiohttp's twin of bench/w16_ws_echo.lua (both ends
in one process): python3 w16_ws_echo.py N [--uvloop]"""
import time

import aiohttp
from aiohttp import web

import common

CLIENTS = 10


async def main(n, name):
    async def handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for m in ws:
            await ws.send_str(m.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    url = "ws://127.0.0.1:%d/ws" % port
    msg = "m" * 32
    left = n

    async with aiohttp.ClientSession() as session:
        async def client():
            nonlocal left
            async with session.ws_connect(url) as ws:
                while left > 0:
                    left -= 1
                    await ws.send_str(msg)
                    assert await ws.receive_str() == msg

        import asyncio
        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        dt = time.perf_counter() - t0
    await runner.cleanup()
    print("%s/w16_ws_echo %d %.6f %.1f" % (name, n, dt, n / dt))


common.run(main, 100000)
