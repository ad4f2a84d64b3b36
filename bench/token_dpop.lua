-- wrk script: token.lua's requests and checks, each request with a DPoP proof of its own
-- (RFC 9449: a proof is good once). bench/run.py signs the proofs beforehand, one a line, in
-- BENCH_DPOP_PROOFS; thread n of BENCH_WRK_THREADS_N takes every n-th line.
dofile(os.getenv("BENCH_TOKEN_LUA"))

local token_setup, token_init = setup, init
local thread_count = 0

function setup(thread)
  token_setup(thread)
  thread:set("index", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  token_init(args)
  proofs, next_proof = {}, 1
  local threads, line_number = tonumber(os.getenv("BENCH_WRK_THREADS_N")), 0
  for line in io.lines(os.getenv("BENCH_DPOP_PROOFS")) do
    if line_number % threads == index then
      table.insert(proofs, line)
    end
    line_number = line_number + 1
  end
end

function request()
  -- Run out, and the server answers 400 (counted as a failure): generate more proofs.
  wrk.headers["DPoP"] = proofs[next_proof] or "exhausted"
  next_proof = next_proof + 1
  return wrk.format()
end
