-- spec/alloc_spec.lua: allocation failures leave the loop consistent.
-- tools/alloc/allocfail fails each allocation of a script in turn (one
-- run per allocation); every run must end in the script's result or a
-- clean "not enough memory", without a crash, a hang or a leak. The full
-- set of scripts runs under ASan in `make check-alloc`; here the core's,
-- which guards the reliability issue's hang (a task counted as pending
-- whose first step could not be queued) and the leaks of the loop, the
-- executor and the concurrent futures made under memory pressure.
local proc = dofile("spec/fixtures/proc.lua")

describe("allocation failures", function()
  for _, script in ipairs{"core", "threads"} do
    it("every allocation of tools/alloc/" .. script .. ".lua failed in turn "
       .. "ends cleanly", function()
      local r = proc.run{proc.build .. "/tools/allocfail", "-t", "10",
                         "tools/alloc/" .. script .. ".lua"}
      assert.equal(0, r.status, r.stderr:sub(1, 2000))
      local runs, failures = r.stdout:match(
        "(%d+) allocations failed one at a time.-(%d+) failures")
      assert.equal("0", failures)
      assert.is_true(tonumber(runs) > 100, r.stdout)
    end)
  end
end)
