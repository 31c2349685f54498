-- Plain appends of BENCH_BODY_BYTES bytes to streams <BENCH_PREFIX>0 .. <BENCH_PREFIX>(N-1),
-- picked at random per request (N = BENCH_STREAMS; 1 makes a hot stream).
local report = require("report")
setup = report.setup
done = report.done

local streams = tonumber(os.getenv("BENCH_STREAMS") or "1000")
local prefix = "/v1/stream/" .. (os.getenv("BENCH_PREFIX") or "s")
local body = string.rep("x", tonumber(os.getenv("BENCH_BODY_BYTES") or "100"))
local headers = { ["Content-Type"] = "application/octet-stream" }

function init(args)
  math.randomseed(os.time() * 1000 + id)
end

function request()
  return wrk.format("POST", prefix .. math.random(0, streams - 1), headers, body)
end
