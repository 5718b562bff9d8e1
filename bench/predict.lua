-- wrk script: POST /predict with a small, varied set of realistic customers, in turn.
-- Some inputs need normalising (case, spaces) and two carry categories the model never saw,
-- as real traffic does. Every request is valid: any non-2xx answer counts as an error.
-- At the end it prints one line "WRK_JSON {...}" with the numbers bench/harness.py reads.

local customers = {
  '{"request_id":"bench-01","tenure_months":6,"num_complaints":3,"avg_session_minutes":12.5,"plan_type":"basic","region":"AF"}',
  '{"request_id":"bench-02","tenure_months":48,"num_complaints":0,"avg_session_minutes":41.25,"plan_type":"premium","region":"EU"}',
  '{"request_id":"bench-03","tenure_months":23,"num_complaints":1,"avg_session_minutes":35.0,"plan_type":"basic","region":"NA"}',
  '{"request_id":"bench-04","tenure_months":2,"num_complaints":5,"avg_session_minutes":8.75,"plan_type":" Basic ","region":"as"}',
  '{"request_id":"bench-05","tenure_months":59,"num_complaints":1,"avg_session_minutes":63.4,"plan_type":"PREMIUM","region":"na"}',
  '{"request_id":"bench-06","tenure_months":14,"num_complaints":2,"avg_session_minutes":27.9,"plan_type":"basic","region":"EU"}',
  '{"request_id":"bench-07","tenure_months":31,"num_complaints":0,"avg_session_minutes":119.0,"plan_type":"enterprise","region":"SA"}',
  '{"request_id":"bench-08","tenure_months":9,"num_complaints":4,"avg_session_minutes":22.1,"plan_type":"premium","region":"AF"}',
}

local requests = {}
local next_index = 1
local thread_count = 0

-- Runs in the main Lua state once per thread, before the threads start.
function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for i, body in ipairs(customers) do
    requests[i] = wrk.format("POST", "/predict", headers, body)
  end
  -- Each thread starts at a different customer so the mix is even across threads.
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
