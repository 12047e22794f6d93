-- commit(plan): one atomic step of the engine.
--
-- KEYS: every key the plan touches (declared for Redis Cluster; the per-aggregate
--       keys share one hash tag).
-- ARGV[1]: the plan, JSON:
--   seen     key of the idempotency record ("" for none)
--   result   what to store under `seen` and return on a redelivery
--   checks   [[key, version]]  aggregates whose stored "version" must equal this (0: absent)
--   sets     [[key, value]]
--   xadds    [[stream, value]]  audit entries, field "e"
--   hsets    [[key, field, value]]
--   sadds    [[key, member]]
--   zadds    [[key, score, member]]
--   zrems    [[key, member]]
--   rpushes  [[key, value]]
--   hincrs   [[key, field, n]]
--   dup_hincrs [[key, field, n]]   applied instead of everything else on a redelivery
--   dels     [[key]]  optional: keys removed (evidence past retention or erased)
--   origin   [index, field, tag]  optional: the event's CloudEvents pair (source, id),
--            hashed, and the aggregate it went to; the same pair already committed on
--            another aggregate (an id reused with other content) is a duplicate too
-- Returns {"ok"} | {"dup", result} | {"conflict", key}.

local plan = cjson.decode(ARGV[1])
-- what a duplicate of another aggregate's event dispatches: nothing
local REUSED = '{"tag":"","effects":[],"timers":[],"commands":[],"reused":true}'

-- One MGET reads the idempotency record and every checked aggregate.
local reads = {}
for i, check in ipairs(plan.checks) do reads[i] = check[1] end
if plan.seen ~= "" then reads[#reads + 1] = plan.seen end
local values = {}
if #reads > 0 then values = redis.call("MGET", unpack(reads)) end

-- A duplicate applies only its counters and returns what it replays.
local function duplicate(record)
    for _, op in ipairs(plan.dup_hincrs) do
        redis.call("HINCRBY", op[1], op[2], op[3])
    end
    return {"dup", record}
end

if plan.seen ~= "" then
    local previous = values[#reads]
    if previous then return duplicate(previous) end
end

local origin = plan.origin
if origin then
    local owner = redis.call("HGET", origin[1], origin[2])
    if owner and owner ~= origin[3] then return duplicate(REUSED) end
end

for i, check in ipairs(plan.checks) do
    local current = values[i]
    local version = 0
    if current then
        version = cjson.decode(current)["version"] or 0
    end
    if version ~= check[2] then
        return {"conflict", check[1]}
    end
end

-- One call per key for the multi-value commands: ops on different keys commute and
-- each key keeps its ops' order, so the result is that of one call per op, with
-- fewer calls (each costs a round through the interpreter, on fakeredis a lot).
local function grouped(command, ops)
    local order, args = {}, {}
    for _, op in ipairs(ops) do
        local key = op[1]
        if not args[key] then
            args[key] = {}
            order[#order + 1] = key
        end
        local list = args[key]
        for i = 2, #op do list[#list + 1] = op[i] end
    end
    for _, key in ipairs(order) do redis.call(command, key, unpack(args[key])) end
end

if #plan.sets > 0 then
    local pairs_ = {}
    for _, op in ipairs(plan.sets) do
        pairs_[#pairs_ + 1] = op[1]
        pairs_[#pairs_ + 1] = op[2]
    end
    redis.call("MSET", unpack(pairs_))
end
for _, op in ipairs(plan.xadds) do redis.call("XADD", op[1], "*", "e", op[2]) end
grouped("HSET", plan.hsets)
grouped("SADD", plan.sadds)
grouped("ZADD", plan.zadds)
grouped("ZREM", plan.zrems)
grouped("RPUSH", plan.rpushes)
for _, op in ipairs(plan.hincrs) do redis.call("HINCRBY", op[1], op[2], op[3]) end
for _, op in ipairs(plan.dels or {}) do redis.call("DEL", op[1]) end

if origin then redis.call("HSET", origin[1], origin[2], origin[3]) end
if plan.seen ~= "" then
    redis.call("SET", plan.seen, plan.result)
end
return {"ok"}
