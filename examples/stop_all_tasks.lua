-- stop_all_tasks.lua: Ctrl-C while the loop runs: run_until_complete
-- raises KeyboardInterrupt, every task is cancelled, and one more turn of
-- the loop lets them finish before it is closed.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "協程停止" (stopping
-- coroutines), the all_tasks program (seeds/004_d4f6bba75a86f4a7.txt,
-- "協程的停止", stop_tasks.lua, prints "Time:" for "TIME:").
-- Python -> Lua: `try: ... except KeyboardInterrupt: ... finally:
-- loop.close()` -> pcall, asyncio.iserror(err, asyncio.KeyboardInterrupt)
-- and example.finally; `asyncio.Task.all_tasks()` ->
-- asyncio.all_tasks(loop), a list, printed in Python's set notation.
-- Press Ctrl-C within 2 s of starting it (otherwise it simply finishes).
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local example = require "lib.example"
local asyncio = require "asyncio"
local async, await = asyncio.async, asyncio.await

local now = example.now

local function set_repr(list)
  local items = {}
  for i, v in ipairs(list) do items[i] = tostring(v) end
  return "{" .. table.concat(items, ", ") .. "}"
end

local do_some_work = async(function(x)
  print("Waiting: ", x)
  await(asyncio.sleep(x))
  return string.format("Done after %ss", x)
end)

local loop = example.loop()

local coroutine1 = do_some_work(1)
local coroutine2 = do_some_work(2)
local coroutine3 = do_some_work(2)

local tasks = {
  asyncio.ensure_future(coroutine1),
  asyncio.ensure_future(coroutine2),
  asyncio.ensure_future(coroutine3),
}

local start = now()
do
  local _ <close> = example.finally(function() loop:close() end)
  local ok, err = pcall(loop.run_until_complete, loop, asyncio.wait(tasks))
  if not ok then
    if not asyncio.iserror(err, asyncio.KeyboardInterrupt) then
      error(err, 0)
    end
    print(set_repr(asyncio.all_tasks(loop)))
    for _, task in ipairs(asyncio.all_tasks(loop)) do
      print(task:cancel())
    end
    loop:stop()
    loop:run_forever()
  end
end

print("TIME: ", now() - start)
