-- wrk script: POST pre-signed, unique Stripe events, one per request, cycling through a file.
-- Each line of the file is "<Stripe-Signature header>\t<JSON body>"; they are signed in Python
-- right before the run (LuaJIT has no HMAC). Usage: wrk -s stripe_events.lua URL -- FILE [HEADER]
-- HEADER names the signature header (Stripe-Signature unless given: X-Cal-Signature-256, ...).
local sigs, bodies, count = {}, {}, 0
local header = "Stripe-Signature"
sent, wrapped, statuses, duplicates = 0, 0, {}, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  if args[2] then header = args[2] end
  for line in file:lines() do
    local tab = line:find("\t", 1, true)
    count = count + 1
    sigs[count] = line:sub(1, tab - 1)
    bodies[count] = line:sub(tab + 1)
  end
  file:close()
  wrk.method = "POST"
end

function request()
  sent = sent + 1
  local i = (sent - 1) % count + 1
  if i == count then wrapped = wrapped + 1 end
  local headers = { ["Content-Type"] = "application/json", [header] = sigs[i] }
  return wrk.format(nil, nil, headers, bodies[i])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if body and body:find("duplicate", 1, true) then duplicates = duplicates + 1 end
end

function done(summary, latency, requests)
  local total_sent, total_wrapped, total_dup, merged = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_wrapped = total_wrapped + thread:get("wrapped")
    total_dup = total_dup + thread:get("duplicates")
    for status, n in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"sent":%d,"wrapped":%d,' ..
    '"duplicates":%d,"statuses":{%s},"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, total_sent, total_wrapped, total_dup,
    table.concat(parts, ","), e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0), latency.max,
    latency.mean))
end
