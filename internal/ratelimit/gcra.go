package ratelimit

import (
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// The limiter is GCRA (the virtual-scheduling form of a token bucket):
// a budget's state is its theoretical arrival time tat; the bucket holds
// burst − (tat − now)/iv tokens, where iv is the emission interval
// 1/(rate × factor). A call is granted when, after taking its token, at
// least `reserve` tokens remain (0 for live, the live reserve for bulk).
//
// The rate factor (adaptive decrease) changes iv. tat is stored with the
// iv it was computed with, and rescaled on the next write so the token
// deficit, not the time, is preserved: a lower rate never frees tokens.
// Between writes the refill runs at the stored iv, which is never faster
// than the current one while the factor recovers, so the factor can only
// make the limiter stricter, never looser than Rate.
//
// The same arithmetic runs in Lua on Redis TIME (script below) and in Go
// for the in-process limiter and the Redis-down fallback (gcraState). All
// times are microseconds; retry-after is rounded up to a whole
// microsecond so a waiter never wakes early.

// epsilon (µs) absorbs float rounding at the exact moment a token becomes
// available: absolute Redis times near 1.7e15 µs carry 0.25 µs steps. A
// wait at or below it is a grant; the script uses the same 0.5.
const epsilon = 0.5

// gcraParams are a budget's constants for one evaluation.
type gcraParams struct {
	iv0     float64 // base emission interval (µs) = 1e6 / rate
	burst   float64 // bucket size
	reserve float64 // tokens bulk must leave
	dec     float64 // factor multiplier per throttle
	floor   float64 // minimum factor
	rec     float64 // factor recovery per µs
}

// gcraResult is the outcome of one take.
type gcraResult struct {
	allowed bool
	retry   time.Duration // when denied: how long until the token is there
	factor  float64       // current rate factor
	tokens  float64       // tokens left after the operation
	now     int64         // the clock used (µs; Redis TIME for Redis)
}

// gcraState is one bucket in process memory. The zero value is a full
// bucket at factor 1.
type gcraState struct {
	set   bool
	tat   float64
	iv    float64
	f     float64
	ft    float64
	until float64
}

func (s *gcraState) factor(now float64, p gcraParams) float64 {
	if !s.set || s.f == 0 {
		return 1
	}
	f := s.f
	if f < 1 && now > s.ft {
		f = math.Min(1, f+p.rec*(now-s.ft))
	}
	return f
}

// rescaled returns tat moved to emission interval iv, keeping the deficit.
func (s *gcraState) rescaled(now, iv float64) float64 {
	if !s.set || s.tat <= now {
		return now
	}
	oiv := s.iv
	if oiv <= 0 {
		oiv = iv
	}
	return now + (s.tat-now)*iv/oiv
}

// take evaluates one call; bulk selects the reserve, drain empties the
// bucket first (used when returning from a fallback).
func (s *gcraState) take(now float64, p gcraParams, bulk, drain bool) gcraResult {
	f := s.factor(now, p)
	iv := p.iv0 / f
	tat := s.rescaled(now, iv)
	write := false
	if drain {
		tat = math.Max(tat, now+p.burst*iv)
		write = true
	}
	reserve := 0.0
	if bulk {
		reserve = p.reserve
	}
	newTAT := tat + iv
	wait := newTAT - (p.burst-reserve)*iv - now
	if s.set && s.until-now > wait {
		wait = s.until - now
	}
	res := gcraResult{factor: f, now: int64(now)}
	if wait > epsilon {
		res.retry = time.Duration(math.Ceil(wait)) * time.Microsecond
	} else {
		res.allowed = true
		tat = newTAT
		write = true
	}
	if write {
		s.keep(tat, iv)
	}
	res.tokens = p.burst - (math.Max(tat, now)-now)/iv
	return res
}

// throttle lowers the factor and, with pause > 0, blocks the budget until
// now + pause, with one token then and the bucket empty behind it.
func (s *gcraState) throttle(now float64, p gcraParams, pause float64) gcraResult {
	f := s.factor(now, p)
	iv := p.iv0 / f
	tat := s.rescaled(now, iv)
	nf := math.Max(p.floor, f*p.dec)
	niv := p.iv0 / nf
	tat = now + (tat-now)*niv/iv
	until := 0.0
	if s.set {
		until = s.until
	}
	if pause > 0 {
		until = math.Max(until, now+pause)
		tat = math.Max(tat, until+(p.burst-1)*niv)
	}
	s.set = true
	s.tat, s.iv, s.f, s.ft, s.until = tat, niv, nf, now, until
	return gcraResult{factor: nf, now: int64(now), tokens: p.burst - (math.Max(tat, now)-now)/niv}
}

func (s *gcraState) keep(tat, iv float64) {
	if !s.set {
		s.set, s.f = true, 1
	}
	s.tat, s.iv = tat, iv
}

// script runs one operation on a budget's hash {tat, iv, f, ft, until}.
//
// KEYS[1] the budget key. ARGV: 1 op ("take" | "throttle"), 2 iv0 µs,
// 3 burst, 4 reserve tokens (0 for live), 5 decrease, 6 min factor,
// 7 recovery per µs, 8 take: "1" to drain first / throttle: pause µs,
// 9 clock override µs ("" = Redis TIME; set only by tests).
//
// Returns {allowed, retry µs, now µs, factor ppm, tokens ×1e6}.
var script = redis.NewScript(`
if redis.replicate_commands then pcall(redis.replicate_commands) end
local now
if ARGV[9] ~= "" then
  now = tonumber(ARGV[9])
else
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local op = ARGV[1]
local iv0, burst, reserve = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local dec, minf, rec = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local h = redis.call("HMGET", KEYS[1], "tat", "iv", "f", "ft", "until")
local stat, siv, sf, sft, suntil = tonumber(h[1]), tonumber(h[2]), tonumber(h[3]), tonumber(h[4]), tonumber(h[5])

local f = sf or 1
if f < 1 and sft and now > sft then f = math.min(1, f + rec * (now - sft)) end
local iv = iv0 / f
local tat = now
if stat and stat > now then
  local oiv = siv
  if not oiv or oiv <= 0 then oiv = iv end
  tat = now + (stat - now) * iv / oiv
end
local untl = suntil or 0
local allowed, retry, write = 0, 0, false

if op == "take" then
  if ARGV[8] == "1" then
    tat = math.max(tat, now + burst * iv)
    write = true
  end
  local newtat = tat + iv
  local wait = newtat - (burst - reserve) * iv - now
  if untl - now > wait then wait = untl - now end
  if wait > 0.5 then
    retry = math.ceil(wait)
  else
    allowed = 1
    tat = newtat
    write = true
  end
  if write then
    redis.call("HSET", KEYS[1], "tat", tat, "iv", iv)
  end
elseif op == "throttle" then
  local nf = math.max(minf, f * dec)
  local niv = iv0 / nf
  tat = now + (tat - now) * niv / iv
  iv = niv
  f = nf
  local pause = tonumber(ARGV[8]) or 0
  if pause > 0 then
    if now + pause > untl then untl = now + pause end
    tat = math.max(tat, untl + (burst - 1) * iv)
  end
  redis.call("HSET", KEYS[1], "tat", tat, "iv", iv, "f", f, "ft", now, "until", untl)
  write = true
else
  return redis.error_reply("ratelimit: unknown op " .. tostring(op))
end

if write then
  local ttl = math.max(tat - now, 0) + math.max(untl - now, 0)
  if f < 1 then ttl = ttl + (1 - f) / rec end
  redis.call("PEXPIRE", KEYS[1], math.ceil(ttl / 1000) + 1000)
end
local tokens = burst - (math.max(tat, now) - now) / iv
return {allowed, retry, now, math.floor(f * 1000000 + 0.5), math.floor(tokens * 1000000 + 0.5)}
`)
