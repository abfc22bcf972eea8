-- wrk script: POST /api/v1/aliases with a new address on every request.
--   wrk -t1 -c1 -d5s --latency -s bench/create_alias.lua -H "Authorization: Bearer ..." \
--       http://127.0.0.1:PORT -- <prefix> <domain>
-- One thread and one connection: requests go one after another (serial latency). The prefix
-- keeps the addresses of different runs apart; the domain and its user00 must exist.
local counter = 0
local prefix = "w"
local domain = "bench.example"
local headers = {}

function init(args)
  prefix = args[1] or prefix
  domain = args[2] or domain
  for name, value in pairs(wrk.headers) do
    headers[name] = value -- the -H headers (Authorization)
  end
  headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"address":"%s%07d@%s","destinations":["user00@%s"]}', prefix, counter, domain, domain)
  return wrk.format("POST", "/api/v1/aliases", headers, body)
end
