-- strangler: the sticky key of a `json:FIELD` route, read from a request body in HAProxy
-- exactly as the embedded data plane reads it (strangler/routing/keys.py, json_field):
-- the FIRST occurrence of a top-level field of a JSON object (RFC 8259, UTF-8), a string
-- with its escapes decoded to UTF-8 (a lone surrogate as its 3-byte form) or an integer as
-- its decimal digits; nothing for any other value, or for a body that is not valid JSON.
-- HAProxy's own json_query keeps \u escapes as single bytes and fails on \", so placement
-- would differ between the data planes for such bodies; this converter does not.

local byte, sub, find, char, concat = string.byte, string.sub, string.find, string.char, table.concat
local tonumber = tonumber
local MAX_DEPTH = 512

local function utf8_of(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 | (cp >> 6), 0x80 | (cp & 0x3F)) end
  if cp < 0x10000 then
    return char(0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F))
  end
  return char(0xF0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3F), 0x80 | ((cp >> 6) & 0x3F),
              0x80 | (cp & 0x3F))
end

-- Strict UTF-8, as Python decodes it: no overlong forms, no encoded surrogates, <= U+10FFFF.
local function valid_utf8(s)
  if not find(s, "[\128-\255]") then return true end
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    if c < 0x80 then
      i = i + 1
    else
      local need, low, high
      if c >= 0xC2 and c <= 0xDF then need = 1
      elseif c == 0xE0 then need, low = 2, 0xA0
      elseif c == 0xED then need, high = 2, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then need = 2
      elseif c == 0xF0 then need, low = 3, 0x90
      elseif c == 0xF4 then need, high = 3, 0x8F
      elseif c >= 0xF1 and c <= 0xF3 then need = 3
      else return false end
      for k = 1, need do
        local d = byte(s, i + k)
        if not d then return false end
        local lo, hi = 0x80, 0xBF
        if k == 1 then lo, hi = low or lo, high or hi end
        if d < lo or d > hi then return false end
      end
      i = i + need + 1
    end
  end
  return true
end

local skip_ws -- position after JSON whitespace
function skip_ws(s, i)
  local _, e = find(s, "^[ \t\n\r]*", i)
  return e + 1
end

local ESCAPES = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f",
                  [110] = "\n", [114] = "\r", [116] = "\t" }

-- A string starting at s[i] == '"': its decoded text and the position after it, or nil.
local function read_string(s, i)
  local j = i + 1
  local _, e = find(s, '^[^"\\\0-\31]*', j)
  if byte(s, e + 1) == 34 then return sub(s, j, e), e + 2 end  -- no escape: the common case
  local parts = {}
  while true do
    _, e = find(s, '^[^"\\\0-\31]*', j)
    parts[#parts + 1] = sub(s, j, e)
    local c = byte(s, e + 1)
    if c == 34 then return concat(parts), e + 2 end
    if c ~= 92 then return nil end  -- a control character or the end of the body
    local x = byte(s, e + 2)
    if x == 117 then
      local hex = sub(s, e + 3, e + 6)
      if not find(hex, "^%x%x%x%x$") then return nil end
      local cp = tonumber(hex, 16)
      j = e + 7
      if cp >= 0xD800 and cp <= 0xDBFF and sub(s, j, j + 1) == "\\u" then
        local low_hex = sub(s, j + 2, j + 5)
        local low = find(low_hex, "^%x%x%x%x$") and tonumber(low_hex, 16)
        if low and low >= 0xDC00 and low <= 0xDFFF then
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
          j = j + 6
        end
      end
      parts[#parts + 1] = utf8_of(cp)
    elseif ESCAPES[x] then
      parts[#parts + 1] = ESCAPES[x]
      j = e + 3
    else
      return nil
    end
  end
end

local read_value

local function read_number(s, i)
  local _, e, int = find(s, "^(%-?0)", i)
  if not e then _, e, int = find(s, "^(%-?[1-9]%d*)", i) end
  if not e then return nil end
  local integer = true
  local _, f = find(s, "^%.%d+", e + 1)
  if f then e, integer = f, false end
  _, f = find(s, "^[eE][+-]?%d+", e + 1)
  if f then e, integer = f, false end
  if integer then
    if int == "-0" then int = "0" end
    return e + 1, int
  end
  return e + 1, false
end

-- The position after the value at s[i], and the value when it can be a key (string or
-- integer; false for any other value); nil when the text is not JSON.
function read_value(s, i, depth)
  local c = byte(s, i)
  if c == 34 then
    local text, after = read_string(s, i)
    if not text then return nil end
    return after, text
  elseif c == 123 or c == 91 then
    if depth >= MAX_DEPTH then return nil end
    local close = c == 123 and 125 or 93
    i = skip_ws(s, i + 1)
    if byte(s, i) == close then return i + 1, false end
    while true do
      if c == 123 then
        if byte(s, i) ~= 34 then return nil end
        local key, after = read_string(s, i)
        if not key then return nil end
        i = skip_ws(s, after)
        if byte(s, i) ~= 58 then return nil end
        i = skip_ws(s, i + 1)
      end
      i = read_value(s, i, depth + 1)
      if not i then return nil end
      i = skip_ws(s, i)
      local d = byte(s, i)
      if d == close then return i + 1, false end
      if d ~= 44 then return nil end
      i = skip_ws(s, i + 1)
    end
  elseif c == 116 then
    if sub(s, i, i + 3) == "true" then return i + 4, false end
  elseif c == 102 then
    if sub(s, i, i + 4) == "false" then return i + 5, false end
  elseif c == 110 then
    if sub(s, i, i + 3) == "null" then return i + 4, false end
  elseif c then
    return read_number(s, i)
  end
  return nil
end

-- The key for `field` in `body`: the first occurrence's string or integer, else "" (HAProxy
-- turns a nil into the integer 0; an empty key counts as no key on both data planes).
local function json_key(body, field)
  if not body or not valid_utf8(body) then return "" end
  local i = skip_ws(body, 1)
  if byte(body, i) ~= 123 then return "" end
  local found = nil
  i = skip_ws(body, i + 1)
  if byte(body, i) == 125 then return "" end
  while true do
    if byte(body, i) ~= 34 then return "" end
    local key, after = read_string(body, i)
    if not key then return "" end
    i = skip_ws(body, after)
    if byte(body, i) ~= 58 then return "" end
    local value
    i, value = read_value(body, skip_ws(body, i + 1), 1)
    if not i then return "" end
    if key == field and found == nil then found = value end
    i = skip_ws(body, i)
    local d = byte(body, i)
    if d == 125 then break end
    if d ~= 44 then return "" end
    i = skip_ws(body, i + 1)
  end
  if skip_ws(body, i + 1) <= #body then return "" end  -- text after the object
  return found or ""
end

core.register_converters("strangler_json_key", json_key)
