-- Plain appends of BENCH_BODY_BYTES bytes to streams <BENCH_PREFIX>0 .. <BENCH_PREFIX>(N-1),
-- picked at random per request (N = BENCH_STREAMS; 1 makes a hot stream). With BENCH_GROUPS=G
-- the streams are <BENCH_PREFIX><i % G>/<i> instead (bench/lib/http.ts groupedStreams).
local report = require("report")
setup = report.setup
done = report.done

local streams = tonumber(os.getenv("BENCH_STREAMS") or "1000")
local prefix = "/v1/stream/" .. (os.getenv("BENCH_PREFIX") or "s")
local groups = tonumber(os.getenv("BENCH_GROUPS") or "0")
local body = string.rep("x", tonumber(os.getenv("BENCH_BODY_BYTES") or "100"))
local headers = { ["Content-Type"] = "application/octet-stream" }

function init(args)
  math.randomseed(os.time() * 1000 + id)
end

function request()
  local i = math.random(0, streams - 1)
  if groups > 0 then
    return wrk.format("POST", prefix .. (i % groups) .. "/" .. i, headers, body)
  end
  return wrk.format("POST", prefix .. i, headers, body)
end
