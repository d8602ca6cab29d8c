-- wrk script: POST one JSON body, read from the file named by BENCH_BODY_FILE (so no GraphQL
-- has to be escaped inside a Lua string), and count responses that are not a clean 200:
-- a non-200 status or a body holding a GraphQL "errors" member.

local path = os.getenv("BENCH_BODY_FILE")
if path == nil or path == "" then
  error("BENCH_BODY_FILE is not set")
end
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
-- The benchmark's principal: personal fields need a key, and reading them is audited.
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad_responses = 0
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    bad_responses = bad_responses + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("bad_responses") or 0)
  end
  io.write(string.format("Bad responses (non-200 or GraphQL errors): %d\n", total))
end
