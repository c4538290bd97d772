"""w12 http server, aiohttp's twin of bench/w12_http_server.lua:
python3 w12_http_server.py N PORT [--uvloop]"""
import sys

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]

from aiohttp import web


async def hello(request):
    return web.Response(text="Hello, World!")


app = web.Application()
app.router.add_get("/", hello)
if "--uvloop" in sys.argv:
    import uvloop
    uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(ARGS[1]), print=None,
            access_log=None)
