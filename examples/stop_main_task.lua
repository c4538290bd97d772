-- stop_main_task.lua: Ctrl-C while main waits for its tasks: every task
-- is cancelled at once by cancelling a gather of all of them.
-- Tutorial: seeds/000_bde8f9ac2968a39b.txt, "協程停止" (stopping
-- coroutines), the main-task program.
-- Python -> Lua: `asyncio.gather(*asyncio.Task.all_tasks()).cancel()` ->
-- asyncio.gather(table.unpack(asyncio.all_tasks(loop))):cancel(); the
-- rest as in stop_all_tasks.lua. Press Ctrl-C within 1 s of starting it
-- (otherwise it simply finishes).
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

local main = async(function()
  local coroutine1 = do_some_work(1)
  local coroutine2 = do_some_work(2)
  local coroutine3 = do_some_work(2)

  local tasks = {
    asyncio.ensure_future(coroutine1),
    asyncio.ensure_future(coroutine2),
    asyncio.ensure_future(coroutine3),
  }

  local done, pending = await(asyncio.wait(tasks))
  for _, task in ipairs(done) do
    print("Task ret: ", task:result())
  end
end)

local start = now()
local loop = example.loop()
local task = asyncio.ensure_future(main())
do
  local _ <close> = example.finally(function() loop:close() end)
  local ok, err = pcall(loop.run_until_complete, loop, task)
  if not ok then
    if not asyncio.iserror(err, asyncio.KeyboardInterrupt) then
      error(err, 0)
    end
    print(set_repr(asyncio.all_tasks(loop)))
    print(asyncio.gather(table.unpack(asyncio.all_tasks(loop))):cancel())
    loop:stop()
    loop:run_forever()
  end
end
