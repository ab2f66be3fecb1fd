-- wrk script: unique JSON webhooks with a shared-secret header, one event id per request.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid or 0
  math.randomseed(os.time() + thread_id * 7919)
  run_id = math.random(1, 1000000000)
end

request = function()
  counter = counter + 1
  local id = run_id .. "-" .. thread_id .. "-" .. counter
  local body = '{"event":"order.success","order_id":"' .. id .. '","customer":{"email":"buyer'
    .. counter .. '@example.com","first_name":"Ada","last_name":"Lovelace"},"total":"49.00"}'
  return wrk.format("POST", "/hooks/bench",
    {["Content-Type"] = "application/json", ["X-Relay-Token"] = "bench-token"}, body)
end
