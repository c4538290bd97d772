// w12 http server, Node's twin of bench/w12_http_server.lua:
// node w12_http_server.js N PORT
const http = require("http");
http.createServer((req, res) => {
  res.writeHead(200, {"Content-Type": "text/plain; charset=utf-8"});
  res.end("Hello, World!");
}).listen(Number(process.argv[3]), "127.0.0.1");
