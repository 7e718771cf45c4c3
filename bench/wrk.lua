-- wrk's side of bench/run: the request a case sends, and its summary as one JSON object in
-- $BENCH_OUT (wrk prints no p95, and its text output is not meant to be parsed).
--
-- With $BENCH_PATCH (a file of "id etag" lines) each request is a PATCH of the next record
-- under If-Match with that record's current ETag, taken back from the answer: repeating one
-- tag would measure 412s after the first write.

local patch_file = os.getenv("BENCH_PATCH")
local ready, counter, threads = {}, 0, {}
local threads_n = tonumber(os.getenv("BENCH_THREADS") or "2")

function setup(thread)
  table.insert(threads, thread)
  thread:set("part", #threads - 1)
end

function init(args)
  wrk.method = os.getenv("BENCH_METHOD") or "GET"
  if not patch_file then return end
  -- Each thread owns its own records, so no two connections hold one tag.
  local i = 0
  for line in io.lines(patch_file) do
    local id, tag = line:match("^(%S+)%s+(.+)$")
    if id and i % threads_n == part then table.insert(ready, {id, tag}) end
    i = i + 1
  end
end

if patch_file then
  request = function()
    local record = table.remove(ready, 1)
    if not record then return wrk.format("GET", "/healthz") end
    counter = counter + 1
    -- wrk.format takes these headers instead of wrk's own (the token among them).
    local headers = {["If-Match"] = record[2], ["Content-Type"] = "application/merge-patch+json"}
    for k, v in pairs(wrk.headers) do headers[k] = v end
    return wrk.format("PATCH", "/api/v1/companies/" .. record[1], headers,
      string.format('{"employees": %d}', 1000 + counter % 1000))
  end
  response = function(status, headers, body)
    local id = body and body:match('"id"%s*:%s*"([%x%-]+)"')
    local tag = headers["ETag"] or headers["etag"]
    if id and tag then table.insert(ready, {id, tag}) end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local f = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  f:write(string.format(
    '{"rps": %.1f, "p50": %.3f, "p95": %.3f, "p99": %.3f, "requests": %d, "errors": %d}\n',
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout))
  f:close()
end
