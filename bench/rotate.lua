-- wrk script: POST a JSON body read from the file named by BENCH_BODY_FILE, with its
-- placeholder (BENCH_PLACEHOLDER) replaced on each request by the next renewal code of the
-- file named by BENCH_CODES_FILE, so the load rotates over thousands of distinct parcels and
-- no cache on the way answers twice from the same key; and count responses that are not a
-- clean 200 (a non-200 status, or a body holding a GraphQL "errors" member).

local function env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set")
  end
  return value
end

local file = assert(io.open(env("BENCH_BODY_FILE"), "rb"))
local template = file:read("*a")
file:close()
local placeholder = env("BENCH_PLACEHOLDER")
local at = assert(string.find(template, placeholder, 1, true), "no placeholder in the body")
local prefix = string.sub(template, 1, at - 1)
local suffix = string.sub(template, at + #placeholder)

local codes = {}
for line in io.lines(env("BENCH_CODES_FILE")) do
  if line ~= "" then
    codes[#codes + 1] = line
  end
end
assert(#codes > 0, "no renewal codes")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  bad_responses = 0
  -- Each thread starts at its own place in the list: threads never walk in step.
  next_code = (id * 7919) % #codes
end

function request()
  next_code = next_code % #codes + 1
  return wrk.format(nil, nil, nil, prefix .. codes[next_code] .. suffix)
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
