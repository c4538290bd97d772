-- spec/badargs_spec.lua: the bad-argument sweep (spec/fixtures/badargs.lua)
-- calls every public function and method with each argument replaced by
-- wrong values, in three contexts; every call must succeed or raise a
-- clear error naming the function, never crash, hang or fail inside the
-- library. Each context runs in a child process, so that a crash names
-- the call that made it (the last CALL line).
local proc = dofile("spec/fixtures/proc.lua")

local function sweep(context)
  local r = proc.run{"timeout", "180", proc.luaio,
                     proc.fixture("badargs.lua"), context}
  local last = r.stdout:match("CALL ([^\n]*)\n[^\n]*$") or "?"
  local problems = {}
  for line in r.stdout:gmatch("PROBLEM [^\n]*") do
    problems[#problems + 1] = line
  end
  return r, problems, last
end

describe("bad arguments", function()
  for _, context in ipairs{"outside", "task", "closed"} do
    it("every public call raises a clear error (" .. context .. ")",
       function()
      local r, problems, last = sweep(context)
      assert.equal("exit", r.how, "crashed after the call " .. last)
      assert.equal(0, r.status, "failed after the call " .. last .. "\n"
                   .. r.stderr:sub(-400))
      assert.same({}, problems)
      local calls = tonumber(r.stdout:match("calls (%d+) problems 0\n$"))
      assert.is_true(calls ~= nil and calls > 5000, "too few calls")
      -- the sweep reaches what the issue listed
      for _, call in ipairs{"asyncio.create_task #2=function",
                            "TaskGroup:create_task #3=0",
                            "Condition:wait_for #2=0",
                            "Queue:put_nowait #1=Lock",
                            "asyncio.Queue #1=nan",
                            "asyncio.Barrier #1=inf",
                            "asyncio.ExceptionGroup #2=0"} do
        assert.truthy(r.stdout:find("CALL " .. call .. "\n", 1, true), call)
      end
    end)
  end
end)
