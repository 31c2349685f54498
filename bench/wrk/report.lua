-- Shared by every bench script (loaded through LUA_PATH): numbers each thread, and prints
-- wrk's summary plus the scripts' own per-thread counters as one JSON line for the driver.
local M = {}
local threads = {}

-- Globals of each thread's Lua state that are summed over threads in the report.
M.counters = {}

function M.setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function M.done(summary, latency, requests)
  local e = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}',
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max),
  }
  for _, name in ipairs(M.counters) do
    local sum = 0
    for _, t in ipairs(threads) do sum = sum + (tonumber(t:get(name)) or 0) end
    table.insert(parts, string.format('"%s":%d', name, sum))
  end
  io.write("WRK_JSON {" .. table.concat(parts, ",") .. "}\n")
end

-- Finds a response header whatever case the server used.
function M.header(headers, name)
  for k, v in pairs(headers) do
    if string.lower(k) == name then return v end
  end
  return nil
end

return M
