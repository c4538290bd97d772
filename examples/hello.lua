-- hello.lua: the smallest asyncio program.
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local main = async(function()
  print("hello")
  await(asyncio.sleep(1))
  print("world")
end)

asyncio.run(main())
