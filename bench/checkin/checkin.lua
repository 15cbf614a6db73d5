-- wrk script: POST /v1/check-in as many different devices, read from CREDENTIALS.
-- Devices are taken in order (one counter per thread), so a run of N requests
-- touches min(N, devices) devices. DELAY_MS > 0 paces each connection (fixed-rate runs).
local credentials = {}
local body = nil
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")

local function read_all(path)
  local f = assert(io.open(path, "r"))
  local data = f:read("*a")
  f:close()
  return data
end

for line in io.lines(os.getenv("CREDENTIALS")) do
  credentials[#credentials + 1] = "Bearer " .. line
end
body = read_all(os.getenv("BODY"))

local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- START=0 takes the devices in file order from the first (a pass that must reach
-- the first N devices); by default each thread starts at a random one.
function init(args)
  counter = tonumber(os.getenv("START") or "") or math.random(1, #credentials)
end

function request()
  counter = counter + 1
  if counter > #credentials then counter = 1 end
  return wrk.format("POST", "/v1/check-in", {
    ["Authorization"] = credentials[counter],
    ["Content-Type"] = "application/json",
  }, body)
end

-- wrk's delay is whole milliseconds: dither between the two nearest to pace finely.
function delay()
  if delay_ms <= 0 then return 0 end
  local base = math.floor(delay_ms)
  if math.random() < delay_ms - base then return base + 1 end
  return base
end

function response(status, headers, body)
  if status ~= 200 then
    errors_seen = (errors_seen or 0) + 1
  end
end
