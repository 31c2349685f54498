-- Idempotent-producer appends to one stream. Run with as many threads as connections:
-- wrk gives a script no handle on its connection, so one connection per thread is what
-- keeps each producer's sequence numbers arriving in order. The sequence number only
-- moves on when an answer comes back: wrk calls request() once on thread 1 just to
-- inspect it, and a request lost with its connection is retried as a producer would.
local report = require("report")
setup = report.setup
done = report.done
report.counters = { "accepted", "duplicates", "rejected" }

local path = "/v1/stream/" .. (os.getenv("BENCH_STREAM") or "hot")
local body = string.rep("x", tonumber(os.getenv("BENCH_BODY_BYTES") or "100"))
accepted, duplicates, rejected = 0, 0, 0

function init(args)
  producer = (os.getenv("BENCH_RUN") or "run") .. "-p" .. id
  seq = 0
end

function request()
  local h = {
    ["Content-Type"] = "application/octet-stream",
    ["Producer-Id"] = producer,
    ["Producer-Epoch"] = "0",
    ["Producer-Seq"] = tostring(seq),
  }
  return wrk.format("POST", path, h, body)
end

-- 200 is new data, 204 a duplicate the server recognised; both count, but only 200
-- shows the appends really went through the producer path.
function response(status, headers, body)
  if status < 300 then seq = seq + 1 end
  if status == 200 then accepted = accepted + 1
  elseif status == 204 then duplicates = duplicates + 1
  else rejected = rejected + 1 end
end
