-- Catch-up reads: from offset -1, follow Stream-Next-Offset until Stream-Up-To-Date,
-- then start over. One connection per thread (each holds its own position).
local report = require("report")
setup = report.setup
done = report.done
report.counters = { "body_bytes", "passes", "bad" }

local path = "/v1/stream/" .. (os.getenv("BENCH_STREAM") or "big") .. "?offset="
offset = "-1"
body_bytes, passes, bad = 0, 0, 0

function request()
  return wrk.format("GET", path .. offset)
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    offset = "-1"
    return
  end
  body_bytes = body_bytes + #body
  if report.header(headers, "stream-up-to-date") == "true" then
    passes = passes + 1
    offset = "-1"
  else
    offset = report.header(headers, "stream-next-offset") or "-1"
  end
end
