-- spec/examples_threads_spec.lua: the tutorial examples that use threads
-- (examples/*.lua; map in examples/README.md) print what the tutorials'
-- programs print.
--
-- Each example runs as a script under the CLI, `<build>/luaio
-- examples/x.lua` (build directory from LUAIO_BUILD, default "build"),
-- with LUAIO_EXAMPLE_FAST=1. Threads run on the real clock, so fast mode
-- shrinks time instead of skipping it: a tutorial second lasts 50 ms
-- (examples/lib/blocking.lua). Timing is checked by lower bounds only:
-- the run lasts at least the tutorial time the program must spend (work
-- in order adds up; work side by side must still take the longest
-- piece). That work overlapped is checked by the order of the lines.
-- The expected text is what Python 3.13 prints for the tutorial's
-- program (the tutorials show no output for these), with the changes
-- each example's header names (programs that end, a total time).
local h = dofile("spec/helpers.lua")

local function lines_of(text)
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  return lines
end

--- The lines with the number after "TIME: " replaced by <t>, and the
-- numbers taken out, in order.
local function untime(text)
  local lines, times = {}, {}
  for i, line in ipairs(lines_of(text)) do
    local t = line:match("^TIME: ([%d.e+-]+)$")
    if t then
      times[#times + 1] = tonumber(t)
      line = "TIME: <t>"
    end
    lines[i] = line
  end
  return lines, times
end

local function sorted(list)
  local copy = table.move(list, 1, #list, 1, {})
  table.sort(copy)
  return copy
end

local CTIME = "^%a%a%a %a%a%a [ %d]%d %d%d:%d%d:%d%d %d%d%d%d$"
local HMS = "%d%d:%d%d:%d%d"

-- One entry per example: file, source (seed and section), at_least (the
-- tutorial seconds the run must last), and check(out) asserting its
-- output.
local examples = {
  {file = "thread_loop_call_soon.lua", source = "000 不同線程的事件循環",
   at_least = 6 + 3, check = function(out)
     -- the blocking calls run one after the other, in posting order
     assert.same({
       "TIME: <t>",
       "More work 6",
       "Finished more work 6",
       "More work 3",
       "Finished more work 3",
     }, (untime(out)))
   end},
  {file = "thread_loop_coroutine.lua", source = "000 新線程協程",
   at_least = 6, check = function(out)
     -- both coroutines start before either finishes: they overlap, and
     -- the total is the longer sleep (at_least)
     assert.same({
       "TIME: <t>",
       "Waiting 6",
       "Waiting 4",
       "Done after 4s",
       "Done after 6s",
     }, (untime(out)))
   end},
  {file = "thread_loop_queue.lua", source = "001 动态注册协程: 异步",
   at_least = 6, check = function(out)
     local lines = lines_of(out)
     assert.equal(5, #lines)
     for _, i in ipairs{1, 3, 5} do
       assert.truthy(lines[i]:find(CTIME), lines[i])
     end
     assert.equal("第二个 协程运行完..", lines[2])
     assert.equal("第一个 协程运行完..", lines[4])
   end},
  {file = "thread_deque_consumer.lua", source = "004 協程中生產-消費模型設計",
   at_least = 5 * 2, check = function(out)
     local lines = lines_of(out)
     assert.equal(5, #lines)
     for _, line in ipairs(lines) do
       local n = tonumber(line:match("^正在執行name: Zarten(%d+)$"))
       assert.is_truthy(n, line)
       assert.is_true(n >= 1 and n <= 10, line)
     end
   end},
  {file = "executor_gather.lua", source = "003 2. 将阻塞操作定义为协程",
   at_least = 4, check = function(out)
     local lines = lines_of(out)
     assert.equal(3, #lines)
     assert.equal("begin", lines[1])
     assert.equal("begin", lines[2])
     -- Python's repr of the two datetimes (whole seconds)
     local date = "datetime%.datetime%(%d%d%d%d, %d%d?, %d%d?, %d%d?, "
       .. "%d%d?, %d%d?%)"
     assert.truthy(lines[3]:find("^%[" .. date .. ", " .. date .. "%]$"),
                   lines[3])
   end},
  {file = "executor_blocked_sleep.lua", source = "004 在線程或進程池中執行代碼",
   at_least = 5, check = function(out)
     local lines = lines_of(out)
     assert.equal(11, #lines)
     local ends = {}
     for i = 1, 10 do
       local stamp, rest = lines[i]:match("^%[(" .. HMS .. ")%] (.*)$")
       assert.is_truthy(stamp, lines[i])
       if i <= 5 then
         -- all five start before any ends: the sleeps run side by side
         assert.equal(("sleep %d is running %ds"):format(i, i), rest)
       else
         ends[#ends + 1] = rest
       end
     end
     assert.same({"sleep 1 is end", "sleep 2 is end", "sleep 3 is end",
                  "sleep 4 is end", "sleep 5 is end"}, sorted(ends))
     assert.equal("results: [1, 2, 3, 4, 5]", lines[11])
   end},
  {file = "thread_loops_executor.lua",
   source = "004 在線程或進程池中執行代碼 (several loops)",
   at_least = 1, check = function(out)
     local lines = lines_of(out)
     assert.equal(15, #lines)
     local at = {before = {}, after = {}, got = {}}
     for i, line in ipairs(lines) do
       local n, what = line:match("^(%d) (%a+): " .. HMS .. "$")
       if not n then
         local a, b = line:match("^Thread (%d) got result (%d)$")
         assert.is_truthy(a, line)
         assert.equal(a, b)
         n, what = a, "got"
       end
       assert.is_nil(at[what][n + 0], "twice: " .. line)
       at[what][n + 0] = i
     end
     -- each thread's lines in order; how the threads' lines interleave
     -- depends on timing (Python's too)
     for n = 0, 4 do
       assert.is_truthy(at.before[n] and at.after[n] and at.got[n])
       assert.is_true(at.before[n] < at.after[n])
       assert.is_true(at.after[n] < at.got[n])
     end
   end},
  {file = "thread_pool_map.lua", source = "001 使用ThreadPoolExecutor",
   at_least = 4, check = function(out)
     local lines = lines_of(out)
     local expected = {}
     for i = 0, 9 do expected[#expected + 1] = "--- " .. i end
     assert.same(sorted(expected), sorted(lines))
     -- three workers: the fourth call waits for one of the first three
     assert.same({"--- 0", "--- 1", "--- 2"},
                 sorted({lines[1], lines[2], lines[3]}))
   end},
}

describe("thread tutorial examples", function()
  for _, ex in ipairs(examples) do
    it(ex.file .. " prints what Python 3.13 prints for seed " .. ex.source,
      function()
        local r, elapsed = h.timed_example(ex.file)
        assert.are.equal("exit 0", r.how .. " " .. tostring(r.status),
                         "exit status; stderr:\n" .. r.stderr)
        assert.are.equal("", r.stderr)
        ex.check(r.stdout)
        assert.is_true(elapsed >= ex.at_least,
          ("ran %.2f tutorial seconds, expected at least %s")
          :format(elapsed, ex.at_least))
      end)
  end

  it("examples/README.md maps every example above", function()
    h.assert_mapped(examples)
  end)
end)
