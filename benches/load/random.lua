-- Per-request values for the wrk scripts: `fill` replaces `${uuid}` with a random UUID and
-- `${b64_N}` with N random base64url characters (the alphabet of B2C's state, tokens and
-- cookies), so each request looks like a new sign-in while its size stays the same.
local M = {}

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local HEX = "0123456789abcdef"

local function pick(alphabet, n)
  local out = {}
  for i = 1, n do
    local k = math.random(1, #alphabet)
    out[i] = alphabet:sub(k, k)
  end
  return table.concat(out)
end

local function uuid()
  return pick(HEX, 8) .. "-" .. pick(HEX, 4) .. "-4" .. pick(HEX, 3) .. "-"
    .. pick("89ab", 1) .. pick(HEX, 3) .. "-" .. pick(HEX, 12)
end

function M.fill(template)
  return (template:gsub("%${([%w_]+)}", function(name)
    if name == "uuid" then
      return uuid()
    end
    local n = name:match("^b64_(%d+)$")
    if n then
      return pick(B64, tonumber(n))
    end
    error("unknown placeholder ${" .. name .. "}")
  end))
end

math.randomseed(os.time())
return M
