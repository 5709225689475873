-- wrk script for the bench (bench/serving.py): with BENCH_BODIES set, POST each line of that file (a JSON
-- body) in turn with BENCH_AUTH as the Authorization header; without it, plain GETs. done() prints one JSON
-- line, prefixed BENCH_RESULT, with the latency percentiles and error counts wrk measured.
local bodies = {}
local path = os.getenv("BENCH_BODIES")
if path and path ~= "" then
  for line in io.lines(path) do bodies[#bodies + 1] = line end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
end

local counter = 0
request = function()
  if #bodies == 0 then return wrk.format() end
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
