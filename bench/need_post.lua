-- need_post.lua — the wrk script of the need-post benchmark (bench/run).
--
-- Every request is POST /v1/needs with the bearer token in BENCH_TOKEN and the body in
-- BENCH_BODY (environment), and every answer must be 201; bench/request.lua does the work
-- and prints the RESULT line (non201=…). Run wrk from the repository's root (dofile's path).

if not os.getenv('BENCH_BODY') then error('BENCH_BODY is not set') end
defaults = { method = 'POST', path = '/v1/needs', status = 201 }
dofile('bench/request.lua')
