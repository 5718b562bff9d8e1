-- wrk script: POST a v2 (Open Inference Protocol) infer request for the eight customers of
-- predict.lua, in turn, one row per request: one tensor per feature, shape [1].
-- INFER_PATH (default /v2/models/churn/infer) is the route. INFER_DIALECT=mlserver adds what
-- MLServer's scikit-learn runtime needs to give the pipeline a DataFrame and return
-- probabilities (request parameter content_type "pd", output "predict_proba"); the default
-- asks modelhost for all its outputs. Prints the same "WRK_JSON {...}" line as predict.lua.

local customers = {
  {6, 3, 12.5, "basic", "AF"},
  {48, 0, 41.25, "premium", "EU"},
  {23, 1, 35.0, "basic", "NA"},
  {2, 5, 8.75, " Basic ", "as"},
  {59, 1, 63.4, "PREMIUM", "na"},
  {14, 2, 27.9, "basic", "EU"},
  {31, 0, 119.0, "enterprise", "SA"},
  {9, 4, 22.1, "premium", "AF"},
}

local path = os.getenv("INFER_PATH") or "/v2/models/churn/infer"
local mlserver = os.getenv("INFER_DIALECT") == "mlserver"

local function body(i, c)
  local extra = ""
  if mlserver then
    extra = ',"parameters":{"content_type":"pd"},"outputs":[{"name":"predict_proba"}]'
  end
  return string.format(
    '{"id":"bench-%02d"%s,"inputs":[' ..
    '{"name":"tenure_months","shape":[1],"datatype":"INT64","data":[%d]},' ..
    '{"name":"num_complaints","shape":[1],"datatype":"INT64","data":[%d]},' ..
    '{"name":"avg_session_minutes","shape":[1],"datatype":"FP64","data":[%s]},' ..
    '{"name":"plan_type","shape":[1],"datatype":"BYTES","data":["%s"]},' ..
    '{"name":"region","shape":[1],"datatype":"BYTES","data":["%s"]}]}',
    i, extra, c[1], c[2], tostring(c[3]), c[4], c[5])
end

function build_requests()
  local headers = { ["Content-Type"] = "application/json" }
  local requests = {}
  for i, c in ipairs(customers) do
    requests[i] = wrk.format("POST", path, headers, body(i, c))
  end
  return requests
end

-- This script's directory, to find wrk_common.lua beside it.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "wrk_common.lua")
