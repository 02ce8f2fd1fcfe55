-- request.lua — the wrk script of the benchmarks: one request, repeated, checked, summed up.
--
-- The request is BENCH_METHOD (GET) BENCH_PATH (/) with the bearer token in BENCH_TOKEN and,
-- when set, the JSON body in BENCH_BODY (environment). A script that runs this one with
-- dofile() may set the global `defaults` ({method=, path=, status=}) first (need_post.lua).
-- Every answer must have the status BENCH_STATUS (200): response() counts the others, and
-- done() prints one line the report scripts read (for status 201: non201=, FIRST_NON201):
--   RESULT requests=… duration_us=… rps=… p50_us=… p99_us=… non<status>=… socket_errors=…
-- and, when some answer was not <status>, the first one: FIRST_NON<status> <status> <body>.
-- Latencies are wrk's (microseconds, from the request's send to its answer's end).
-- Owns nothing else: the URL, threads, connections and duration are wrk's arguments.

local d = defaults or {}
local token = os.getenv('BENCH_TOKEN') or error('BENCH_TOKEN is not set')
local body = os.getenv('BENCH_BODY')
local want = tonumber(os.getenv('BENCH_STATUS') or d.status or 200)

wrk.method = os.getenv('BENCH_METHOD') or d.method or 'GET'
wrk.path = os.getenv('BENCH_PATH') or d.path or '/'
wrk.headers['Authorization'] = 'Bearer ' .. token
if body then
  wrk.body = body
  wrk.headers['Content-Type'] = 'application/json'
end

-- per thread (each wrk thread has its own Lua state); done() adds them up
unexpected = 0
first_bad = ''

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, resp_body)
  if status ~= want then
    if unexpected == 0 then first_bad = status .. ' ' .. string.sub(resp_body or '', 1, 300) end
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local bad, example = 0, ''
  for _, t in ipairs(threads) do
    bad = bad + t:get('unexpected')
    if example == '' then example = t:get('first_bad') or '' end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non%d=%d socket_errors=%d\n',
    summary.requests, summary.duration, summary.requests / secs, latency:percentile(50),
    latency:percentile(99), want, bad, e.connect + e.read + e.write + e.timeout))
  if bad > 0 then io.write('FIRST_NON' .. want .. ' ' .. example .. '\n') end
end
