"""Lua scripts that make each store operation one atomic step inside Redis."""

# KEYS: code, sends. ARGV: now, max_sends, window, id, channel, mac, expires_at, ttl_ms.
# Returns nil when the send is counted and the code stored, else the seconds until the
# oldest counted send leaves the window (Python rounds up).
BEGIN_SEND = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[2], now, ARGV[4])
redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000))
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[4], 'channel', ARGV[5], 'mac', ARGV[6],
           'attempts', 0, 'expires_at', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return false
"""

# KEYS: code, sends. ARGV: id. The code is removed only if it is still this send's.
ABORT_SEND = """
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return false
"""

# KEYS: code, events stream. ARGV: id, matched (1/0), max_attempts, maxlen,
# then the event's id, to, channel, approved_at. Returns {outcome, attempts}.
RECORD_CHECK = """
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return {'gone', 0} end
if id ~= ARGV[1] then return {'replaced', 0} end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts'))
if attempts >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return {'exhausted', attempts}
end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'type', 'verification.approved',
             'id', ARGV[5], 'to', ARGV[6], 'channel', ARGV[7], 'approved_at', ARGV[8])
  return {'approved', attempts}
end
return {'wrong', redis.call('HINCRBY', KEYS[1], 'attempts', 1)}
"""

# KEYS: idempotency record. ARGV: fingerprint (a SHA-256 hex digest), reservation ttl_ms.
# Returns nil when the caller now owns the key, else the existing record (HGETALL).
RESERVE_KEY = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGETALL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'fp', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return false
"""

# KEYS: key. ARGV: candidate. SET NX then GET: every caller gets the first value stored.
SET_ONCE_GET = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""
