-- The part of bench/predict.lua and bench/infer.lua that is the same: each wrk thread sends
-- the requests in `requests` in turn, starting at a different one, and prints one line
-- "WRK_JSON {...}" with the numbers bench/harness.py reads. A script defines
-- `build_requests()`, returning the formatted requests, then runs this file with dofile.

local requests = {}
local next_index = 1
local thread_count = 0

-- Runs in the main Lua state once per thread, before the threads start.
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end

function init(args)
  requests = build_requests()
  -- Each thread starts at a different request so the mix is even across threads.
  next_index = ((thread_number or 1) - 1) % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
