-- need_post.lua — the wrk script of the need-post benchmark (bench/run).
--
-- Every request is POST /v1/needs with the bearer token in BENCH_TOKEN and the body in
-- BENCH_BODY (environment). Every answer must be 201: response() counts the others, and
-- done() prints one line bench/report.py reads:
--   RESULT requests=… duration_us=… rps=… p50_us=… p99_us=… non201=… socket_errors=…
-- Latencies are wrk's (microseconds, from the request's send to its answer's end).
-- Owns nothing else: the URL, threads, connections and duration are wrk's arguments.

local token = os.getenv('BENCH_TOKEN') or error('BENCH_TOKEN is not set')
local body = os.getenv('BENCH_BODY') or error('BENCH_BODY is not set')

wrk.method = 'POST'
wrk.path = '/v1/needs'
wrk.body = body
wrk.headers['Content-Type'] = 'application/json'
wrk.headers['Authorization'] = 'Bearer ' .. token

-- per thread (each wrk thread has its own Lua state); done() adds them up
non201 = 0
first_bad = ''

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, resp_body)
  if status ~= 201 then
    if non201 == 0 then first_bad = status .. ' ' .. string.sub(resp_body or '', 1, 300) end
    non201 = non201 + 1
  end
end

function done(summary, latency, requests)
  local bad, example = 0, ''
  for _, t in ipairs(threads) do
    bad = bad + t:get('non201')
    if example == '' then example = t:get('first_bad') or '' end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non201=%d socket_errors=%d\n',
    summary.requests, summary.duration, summary.requests / secs, latency:percentile(50),
    latency:percentile(99), bad, e.connect + e.read + e.write + e.timeout))
  if bad > 0 then io.write('FIRST_NON201 ' .. example .. '\n') end
end
