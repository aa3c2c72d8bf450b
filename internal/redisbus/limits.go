package redisbus

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/internal/authority"
)

// takeAllScript counts ARGV[1] named limits, all or nothing. Take i has
// its current window's counter at KEYS[2i-1] and its previous window's at
// KEYS[2i], and ARGV[4i-2 .. 4i+1] = limit, cost, weight (of the previous
// window, in millionths; 0 for a fixed limit, whose previous window is not
// read) and the Unix ms at which its current window's key expires. It
// reads every counter, and only if every take fits
// (current + ⌊previous × weight / 10^6⌋ + cost ≤ limit) adds each non-zero
// cost to its current window and sets that key's expiry. It returns
// {admitted, current_1, previous_1, …} with the counts after the call.
// One script runs at a time on a Redis server, so the check and the
// counting are atomic; a key is given its expiry in the script that
// creates it, so none is left without one. Counts stay at or below
// authority.MaxLimit, so previous × weight (below 2^53) and the division
// are exact in Lua's doubles.
var takeAllScript = redis.NewScript(`
local n = tonumber(ARGV[1])
local cur, prev = {}, {}
local ok = 1
for i = 1, n do
	local a = 4 * i - 2
	local limit, cost, weight = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
	cur[i] = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
	prev[i] = 0
	if weight > 0 then
		prev[i] = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
	end
	if cur[i] + math.floor(prev[i] * weight / 1000000) + cost > limit then
		ok = 0
	end
end
if ok == 1 then
	for i = 1, n do
		local a = 4 * i - 2
		local cost = tonumber(ARGV[a + 1])
		if cost > 0 then
			cur[i] = redis.call('INCRBY', KEYS[2 * i - 1], cost)
			redis.call('PEXPIREAT', KEYS[2 * i - 1], ARGV[a + 3])
		end
	end
end
local out = {ok}
for i = 1, n do
	out[2 * i] = cur[i]
	out[2 * i + 1] = prev[i]
end
return out
`)

// TakeAll counts the named limits takes at now, all or nothing (see
// authority.Limiter), in one Lua script over all their keys. Each window
// has its own key, KeyPrefix + "n:{" + key + "}:" + window length + ":" +
// start (Unix ms), apart from Take's, which expires ExpiryMargin after the
// window is no longer needed (authority.LimitPlan.KeepUntil: one window
// after it ends, for a sliding limit's previous window). The braces make
// key the Redis Cluster hash tag, so a key's windows share a slot; the
// limits of one call share a slot only if their keys carry a common tag
// (a cluster refuses the script otherwise; keyward's clients are
// single-server).
//
// When Redis fails, TakeAll answers by the Policy, as Take does:
// PolicyLocal asks the fallback's TakeAll, PolicyOpen admits and reports
// every limit as untouched (Remaining = Limit), PolicyClosed refuses and
// reports Remaining 0. The error is the context's or an invalid take's
// (authority.PlanLimits), returned before Redis is asked.
func (l *Limiter) TakeAll(ctx context.Context, now time.Time, takes []authority.LimitTake) (bool, []authority.LimitState, error) {
	if err := ctx.Err(); err != nil {
		return false, nil, err
	}
	plans, err := authority.PlanLimits(now, takes)
	if err != nil {
		return false, nil, err
	}
	if len(takes) == 0 {
		return true, nil, nil
	}
	if l.down.Load() && !l.claimProbe() {
		return l.degradedAll(ctx, now, takes, plans)
	}

	keys := make([]string, 0, 2*len(takes))
	args := make([]any, 0, 1+4*len(takes))
	args = append(args, len(takes))
	for i, t := range takes {
		p := plans[i]
		keys = append(keys, limitKey(t.Key, p.Window, p.Start), limitKey(t.Key, p.Window, p.PrevStart()))
		args = append(args, t.Limit, t.Cost, p.Weight, p.KeepUntil()+ExpiryMargin.Milliseconds())
	}
	cctx, cancel := context.WithTimeout(ctx, takeTimeout)
	res, err := takeAllScript.Run(cctx, l.rdb, keys, args...).Int64Slice()
	cancel()
	if err == nil && len(res) != 1+2*len(takes) {
		err = fmt.Errorf("redisbus: named-limit script returned %d values", len(res))
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return false, nil, cerr // the caller gave up; not Redis's fault
		}
		l.failed()
		return l.degradedAll(ctx, now, takes, plans)
	}
	l.succeeded()
	cur, prev := make([]int64, len(takes)), make([]int64, len(takes))
	for i := range takes {
		cur[i], prev[i] = res[1+2*i], res[2+2*i]
	}
	return res[0] == 1, authority.LimitStates(now, takes, plans, cur, prev), nil
}

// degradedAll answers a TakeAll by the policy.
func (l *Limiter) degradedAll(ctx context.Context, now time.Time, takes []authority.LimitTake, plans []authority.LimitPlan) (bool, []authority.LimitState, error) {
	switch l.policy {
	case PolicyOpen, PolicyClosed:
		states := make([]authority.LimitState, len(takes))
		for i, t := range takes {
			states[i] = authority.LimitState{Limit: t.Limit, Remaining: t.Limit, Reset: time.UnixMilli(plans[i].End())}
			if l.policy == PolicyClosed {
				states[i].Remaining = 0
			}
		}
		return l.policy == PolicyOpen, states, nil
	}
	return l.fallback.TakeAll(ctx, now, takes)
}

// limitKey is the Redis key of key's named-limit window of length window
// starting at start (both Unix ms).
func limitKey(key string, window, start int64) string {
	b := make([]byte, 0, len(KeyPrefix)+len(key)+32)
	b = append(b, KeyPrefix...)
	b = append(b, "n:{"...)
	b = append(b, key...)
	b = append(b, "}:"...)
	b = strconv.AppendInt(b, window, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, start, 10)
	return string(b)
}
