-- wrk script: POST /predict with a small, varied set of realistic customers, in turn.
-- Some inputs need normalising (case, spaces) and two carry categories the model never saw,
-- as real traffic does. Every request is valid: any non-2xx answer counts as an error.
-- The rest (threads, rotation, the "WRK_JSON {...}" line harness.py reads) is wrk_common.lua.

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

function build_requests()
  local headers = { ["Content-Type"] = "application/json" }
  local requests = {}
  for i, body in ipairs(customers) do
    requests[i] = wrk.format("POST", "/predict", headers, body)
  end
  return requests
end

-- This script's directory, to find wrk_common.lua beside it.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk_common.lua")
