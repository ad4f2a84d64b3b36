-- wrk script: POST /oauth/token with client_secret_post, and check every answer.
-- Credentials come from the environment (BENCH_CLIENT_ID, BENCH_CLIENT_SECRET); with
-- BENCH_ASSERTION set, the jwt-bearer grant with that external workload token instead.
-- A response that is not a 200 carrying an access_token counts as a failure; done() prints one
-- line "BENCH_RESULT {json}" that bench/run.py reads.

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local client_id = os.getenv("BENCH_CLIENT_ID")
local client_secret = os.getenv("BENCH_CLIENT_SECRET")
assert(client_id and client_secret, "set BENCH_CLIENT_ID and BENCH_CLIENT_SECRET")

wrk.method = "POST"
wrk.path = "/oauth/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=" .. urlencode(client_id)
  .. "&client_secret=" .. urlencode(client_secret)
local assertion = os.getenv("BENCH_ASSERTION")
if assertion and assertion ~= "" then
  wrk.body = "grant_type=" .. urlencode("urn:ietf:params:oauth:grant-type:jwt-bearer")
    .. "&client_id=" .. urlencode(client_id) .. "&assertion=" .. urlencode(assertion)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  failed = 0
  first_failure = ""
end

function response(status, headers, body)
  if status == 200 and body and string.find(body, '"access_token":"', 1, true) then
    ok = ok + 1
  else
    failed = failed + 1
    if first_failure == "" then
      first_failure = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local total_ok, total_failed, failure = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_failed = total_failed + thread:get("failed")
    local f = thread:get("first_failure")
    if failure == "" and f and f ~= "" then
      failure = f:gsub('[\\"]', "'"):gsub("%c", " ")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"ok":%d,"failed":%d,'
      .. '"socket_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"first_failure":"%s"}\n',
    summary.requests, summary.duration, total_ok, total_failed,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    failure))
end
