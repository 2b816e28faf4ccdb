"""Shared rate limits and breaker state on Redis (contract in :mod:`nexflow.scale.limits`).

Each call is one Lua script, atomic on the server and timed by the server's clock
(``TIME``), so replicas with skewed clocks agree. A bucket key expires once it would be
full again (``burst / rate`` seconds), so idle users cost no memory; breaker keys live
until a success deletes them (one per model profile).
"""

from __future__ import annotations

from typing import Any

from nexflow.config.model import BreakerConfig, RateLimitConfig
from nexflow.scale.errors import ScaleUnavailable

_CLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS[1] bucket; ARGV rate/s, burst, cost, ttl ms. Returns {granted, tokens as text}.
_TAKE = (
    _CLOCK
    + """
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local granted = 0
if tokens >= cost then
    tokens = tokens - cost
    granted = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.9f', tokens), 'ts',
           string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {granted, string.format('%.9f', tokens)}
"""
)

# KEYS[1] breaker; ARGV cooldown s, probe ttl s. Returns 1 (allowed) or 0.
_ALLOW = (
    _CLOCK
    + """
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at'))
if not opened then return 1 end
if now - opened < tonumber(ARGV[1]) then return 0 end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe_until'))
if probe and probe >= now then return 0 end
redis.call('HSET', KEYS[1], 'probe_until', string.format('%.6f', now + tonumber(ARGV[2])))
return 1
"""
)

# KEYS[1] breaker; ARGV failures threshold.
_FAILURE = (
    _CLOCK
    + """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local probing = redis.call('HGET', KEYS[1], 'probe_until')
if probing or failures >= tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'opened_at', string.format('%.6f', now))
end
redis.call('HDEL', KEYS[1], 'probe_until')
return failures
"""
)

# KEYS[1] breaker; ARGV cooldown s.
_STATE = (
    _CLOCK
    + """
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at'))
if not opened then return 'closed' end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe_until'))
if (probe and probe >= now) or now - opened >= tonumber(ARGV[1]) then return 'half-open' end
return 'open'
"""
)


_DELETE = "return redis.call('DEL', KEYS[1])"
_RELEASE = "return redis.call('HDEL', KEYS[1], 'probe_until')"


class _RedisScripts:
    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._scripts: dict[str, Any] = {}

    async def _eval(self, source: str, key: str, *args: Any) -> Any:
        from redis.exceptions import RedisError

        script = self._scripts.get(source)
        if script is None:  # EVALSHA, loading the script on the first NOSCRIPT
            script = self._scripts[source] = self._client.register_script(source)
        try:
            return await script(keys=[self._prefix + key], args=list(args))
        except (RedisError, OSError) as exc:
            raise ScaleUnavailable(f"{type(self).__name__}: {exc}") from exc


class RedisRateLimiter(_RedisScripts):
    """Token buckets at ``nexflow:rate:<name>:<key>``. ``client`` is a
    ``redis.asyncio.Redis`` the composition root owns (shared with the bus's pool or not)."""

    def __init__(self, client: Any, config: RateLimitConfig, *, name: str = "rate") -> None:
        super().__init__(client, f"nexflow:rate:{name}:")
        self._rate = config.per_minute / 60.0
        self._burst = float(config.burst)
        self._ttl_ms = int(self._burst / self._rate * 1000) + 1000

    async def take(self, key: str, cost: float = 1.0) -> float:
        granted, tokens = await self._eval(
            _TAKE, key, repr(self._rate), repr(self._burst), repr(cost), self._ttl_ms
        )
        if int(granted):
            return 0.0
        return (cost - float(tokens)) / self._rate


class RedisBreaker(_RedisScripts):
    """Breaker state at ``nexflow:breaker:<name>:<key>``."""

    def __init__(
        self, client: Any, config: BreakerConfig, *, name: str = "llm", probe_ttl_s: float = 60.0
    ) -> None:
        super().__init__(client, f"nexflow:breaker:{name}:")
        self._config = config
        self._probe_ttl_s = probe_ttl_s

    async def allow(self, key: str) -> bool:
        cooldown, ttl = repr(self._config.cooldown_s), repr(self._probe_ttl_s)
        return bool(int(await self._eval(_ALLOW, key, cooldown, ttl)))

    async def success(self, key: str) -> None:
        await self._eval(_DELETE, key)

    async def failure(self, key: str) -> None:
        await self._eval(_FAILURE, key, self._config.failures)

    async def release(self, key: str) -> None:
        await self._eval(_RELEASE, key)

    async def state(self, key: str) -> str:
        value = await self._eval(_STATE, key, repr(self._config.cooldown_s))
        return value if isinstance(value, str) else value.decode()
