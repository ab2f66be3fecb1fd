-- wrk script: unique JSON webhooks with a shared-secret header, one event id per request.
-- It counts the 202s it receives and, when wrk finishes, prints one line
--   BENCH-RESULT {...json...}
-- that bench/wrk.py reads (exact counts and percentiles, in microseconds).
-- With BENCH_IDS_FILE set, it also writes there the event id of every 202 (one a line),
-- so the benchmark can check each one is stored, not just count rows.
local counter = 0
local thread_id = 0
local threads = {}
accepted = 0  -- 202 answers seen by this thread (read by done() through thread:get)
ids = {}  -- the event id of each of them

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid or 0
  math.randomseed(os.time() + thread_id * 7919)
  run_id = math.random(1, 1000000000) .. "-" .. os.time()
end

request = function()
  counter = counter + 1
  local id = run_id .. "-" .. thread_id .. "-" .. counter
  local body = '{"event":"order.success","order_id":"' .. id .. '","customer":{"email":"buyer'
    .. counter .. '@example.com","first_name":"Ada","last_name":"Lovelace"},"total":"49.00"}'
  return wrk.format("POST", "/hooks/bench",
    {["Content-Type"] = "application/json", ["X-Relay-Token"] = "bench-token"}, body)
end

response = function(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
    ids[accepted] = body:match('"event_id":"([^"]+)"') or "(no event_id)"
  end
end

function done(summary, latency, requests)
  local total_accepted = 0
  for _, thread in ipairs(threads) do
    total_accepted = total_accepted + (thread:get("accepted") or 0)
  end
  local ids_file = os.getenv("BENCH_IDS_FILE")
  if ids_file and ids_file ~= "" then
    local out = assert(io.open(ids_file, "w"))
    for _, thread in ipairs(threads) do
      for _, id in ipairs(thread:get("ids") or {}) do
        out:write(id, "\n")
      end
    end
    out:close()
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "duration_us": %d, "accepted": %d, "non_2xx_3xx": %d, '
      .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}}\n',
    summary.requests, summary.duration, total_accepted, e.status,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
