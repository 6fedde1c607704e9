-- wrk script: POST one fixed body with fixed headers; print a JSON summary.
-- Arguments after "--": BODY_FILE HEADERS_FILE [API_KEY]

local function slurp(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

local prepared

function init(args)
   local headers = {}
   for line in io.lines(args[2]) do
      local name, value = line:match("^([^:]+):%s*(.*)$")
      if name then
         headers[name] = value
      end
   end
   headers["x-api-key"] = args[3] or "sk-ant-bench-direct"
   -- Built once per thread: the body never changes between requests.
   prepared = wrk.format("POST", nil, headers, slurp(args[1]))
end

function request()
   return prepared
end

function done(summary, latency, requests)
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      '{"requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
      '"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
      '"status":%d,"timeout":%d}}\n',
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
