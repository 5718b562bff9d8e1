-- wrk script: POSTs one request body, read from the file named by the BODY environment
-- variable (written by `batch_throughput --write-bodies DIR`), to the URL's path, over and over.
-- wrk counts answers of 400 and above as status errors; they are printed with the rate, so a run
-- with errors cannot pass for a fast one.
--
--   BODY=DIR/predict-100.json wrk -t2 -c8 -d10s -s host/examples/batch_throughput.lua \
--     http://127.0.0.1:8000/predict

local path = os.getenv("BODY") or error("set BODY to a request body file")
local file = io.open(path, "rb") or error("cannot read " .. path)
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "requests %d, status errors %d, socket errors %d, %.1f requests/s, p50 %.2f ms, p99 %.2f ms\n",
    summary.requests, summary.errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
