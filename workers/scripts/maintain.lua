-- Queue maintenance on a schedule (workers/redis_guard.py), in place of dramatiq's own.
--
-- dramatiq's dispatch script may do maintenance inside any command; for each dead worker
-- it then runs KEYS over the whole database, so with maintenance on every command (the
-- only way to get redelivery in seconds) each worker death blocks Redis once per command
-- until every queue has been maintained: 37 ms a call on a 60,000-key test database, whole
-- seconds on a real store. Here the queues are named, so no KEYS is needed.
--
-- KEYS[1]  <namespace>:__heartbeats__
-- ARGV     namespace, now_ms, heartbeat_timeout_ms, dead_message_ttl_ms, queue names...
--          (every queue and delay queue the workers consume)
-- Returns  {dead workers removed, messages requeued, dead letters expired}
local heartbeats = KEYS[1]
local namespace = ARGV[1]
local now = tonumber(ARGV[2])
local timeout = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])

local dead = redis.call("zrangebyscore", heartbeats, 0, now - timeout)
local requeued = 0
for _, worker in ipairs(dead) do
    for i = 5, #ARGV do
        local queue = namespace .. ":" .. ARGV[i]
        local acks = namespace .. ":__acks__." .. worker .. "." .. ARGV[i]
        for _, id in ipairs(redis.call("smembers", acks)) do
            if redis.call("hexists", queue .. ".msgs", id) == 1 then
                redis.call("rpush", queue, id)
                requeued = requeued + 1
            end
        end
        redis.call("del", acks)
    end
    redis.call("zrem", heartbeats, worker)
end

local expired = 0
for i = 5, #ARGV do
    local name = ARGV[i]
    if string.sub(name, -3) ~= ".DQ" then
        local xq = namespace .. ":" .. name .. ".XQ"
        local ids = redis.call("zrangebyscore", xq, 0, now - ttl, "LIMIT", 0, 1000)
        for _, id in ipairs(ids) do
            redis.call("zrem", xq, id)
            redis.call("hdel", xq .. ".msgs", id)
            expired = expired + 1
        end
    end
end
return {#dead, requeued, expired}
