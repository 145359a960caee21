"""What replicas sharing one PostgreSQL agree on: rate limits, circuit breakers, leadership.

Each operation is one round trip, serialised per key by a row lock, and timed by the
database's clock (``gateway_now()``): the replicas' own clocks may disagree.

- a rate limit keeps the start of every admitted call (a sliding-window log, exact: no interval
  of a window's length ever holds more starts than its limit) and a lease per call in flight
  (the concurrency cap); a replica that dies leaves leases that lapse after ``lease`` seconds.
- a circuit breaker is one row (state, generation, counters); half-open trial calls are leased
  rows too, so a dead replica's trial slot frees itself.
- leadership is a row per role: the holder renews it before ``until``; anyone takes it once it
  lapsed, with the next term.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.store.postgres_base import PostgresBase

COORDINATION_SCHEMA = """
CREATE OR REPLACE FUNCTION gateway_now() RETURNS DOUBLE PRECISION LANGUAGE sql VOLATILE
    AS $$ SELECT extract(epoch FROM clock_timestamp())::double precision $$;
CREATE TABLE IF NOT EXISTS rate_limits (
    key TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS rate_starts (
    key TEXT NOT NULL,
    permit TEXT NOT NULL,
    started DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_starts_by_key ON rate_starts (key, started);
CREATE TABLE IF NOT EXISTS rate_leases (
    key TEXT NOT NULL,
    permit TEXT NOT NULL,
    until DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (key, permit)
);
CREATE TABLE IF NOT EXISTS breakers (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT 'closed',
    generation INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    successes INTEGER NOT NULL DEFAULT 0,
    opened_at DOUBLE PRECISION,
    times_opened INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS breaker_trials (
    key TEXT NOT NULL,
    ticket TEXT NOT NULL,
    until DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (key, ticket)
);
CREATE TABLE IF NOT EXISTS leaders (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    term INTEGER NOT NULL,
    until DOUBLE PRECISION NOT NULL
);
CREATE OR REPLACE FUNCTION gateway_take_permit(
    p_key TEXT, p_limits INTEGER[], p_seconds DOUBLE PRECISION[], p_concurrent INTEGER,
    p_permit TEXT, p_lease DOUBLE PRECISION
) RETURNS DOUBLE PRECISION LANGUAGE plpgsql AS $$
DECLARE
    now_ DOUBLE PRECISION;
    longest DOUBLE PRECISION := 0;
    wait_ DOUBLE PRECISION := 0;
    nth DOUBLE PRECISION;
    busy INTEGER;
BEGIN
    INSERT INTO rate_limits (key) VALUES (p_key) ON CONFLICT DO NOTHING;
    PERFORM 1 FROM rate_limits WHERE key = p_key FOR UPDATE;
    now_ := gateway_now();
    FOR i IN 1 .. coalesce(array_length(p_limits, 1), 0) LOOP
        longest := greatest(longest, p_seconds[i]);
        SELECT started INTO nth FROM rate_starts
            WHERE key = p_key AND started > now_ - p_seconds[i]
            ORDER BY started DESC OFFSET p_limits[i] - 1 LIMIT 1;
        IF FOUND THEN
            wait_ := greatest(wait_, nth + p_seconds[i] - now_);
        END IF;
    END LOOP;
    IF wait_ > 0 THEN
        RETURN wait_;
    END IF;
    IF p_concurrent IS NOT NULL THEN
        DELETE FROM rate_leases WHERE key = p_key AND until <= now_;
        SELECT count(*) INTO busy FROM rate_leases WHERE key = p_key;
        IF busy >= p_concurrent THEN
            RETURN -1;
        END IF;
        INSERT INTO rate_leases (key, permit, until) VALUES (p_key, p_permit, now_ + p_lease);
    END IF;
    IF longest > 0 THEN
        DELETE FROM rate_starts WHERE key = p_key AND started <= now_ - longest;
        INSERT INTO rate_starts (key, permit, started) VALUES (p_key, p_permit, now_);
    END IF;
    RETURN 0;
END $$;
CREATE OR REPLACE FUNCTION gateway_breaker_admit(
    p_key TEXT, p_timeout DOUBLE PRECISION, p_max_trials INTEGER, p_ticket TEXT,
    p_lease DOUBLE PRECISION
) RETURNS TABLE (verdict TEXT, generation INTEGER, wait DOUBLE PRECISION)
LANGUAGE plpgsql AS $$
DECLARE
    now_ DOUBLE PRECISION;
    b breakers%ROWTYPE;
    trials INTEGER;
BEGIN
    INSERT INTO breakers (key) VALUES (p_key) ON CONFLICT DO NOTHING;
    SELECT * INTO b FROM breakers WHERE breakers.key = p_key FOR UPDATE;
    now_ := gateway_now();
    IF b.state = 'open' AND b.opened_at + p_timeout <= now_ THEN
        b.state := 'half_open';
        b.generation := b.generation + 1;
        UPDATE breakers SET state = b.state, generation = b.generation, successes = 0
            WHERE breakers.key = p_key;
        DELETE FROM breaker_trials WHERE breaker_trials.key = p_key;
    END IF;
    IF b.state = 'open' THEN
        RETURN QUERY SELECT 'open'::TEXT, b.generation, b.opened_at + p_timeout - now_;
        RETURN;
    END IF;
    IF b.state = 'half_open' THEN
        DELETE FROM breaker_trials WHERE breaker_trials.key = p_key AND until <= now_;
        SELECT count(*) INTO trials FROM breaker_trials WHERE breaker_trials.key = p_key;
        IF trials >= p_max_trials THEN
            RETURN QUERY SELECT 'busy'::TEXT, b.generation, 0.0::DOUBLE PRECISION;
            RETURN;
        END IF;
        IF p_ticket IS NOT NULL THEN
            INSERT INTO breaker_trials (key, ticket, until)
                VALUES (p_key, p_ticket, now_ + p_lease);
        END IF;
        RETURN QUERY SELECT 'trial'::TEXT, b.generation, 0.0::DOUBLE PRECISION;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'closed'::TEXT, b.generation, 0.0::DOUBLE PRECISION;
END $$;
CREATE OR REPLACE FUNCTION gateway_breaker_report(
    p_key TEXT, p_generation INTEGER, p_ticket TEXT, p_outcome TEXT,
    p_failure_threshold INTEGER, p_success_threshold INTEGER
) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    b breakers%ROWTYPE;
    known BOOLEAN;
BEGIN
    SELECT * INTO b FROM breakers WHERE key = p_key FOR UPDATE;
    known := FOUND;
    IF p_ticket IS NOT NULL THEN
        DELETE FROM breaker_trials WHERE key = p_key AND ticket = p_ticket;
    END IF;
    IF NOT known OR b.generation <> p_generation OR p_outcome = 'neutral' THEN
        RETURN NULL;
    END IF;
    IF p_outcome = 'failure' AND (b.state = 'half_open' OR b.failures + 1 >= p_failure_threshold)
    THEN
        UPDATE breakers SET state = 'open', generation = generation + 1,
            failures = failures + 1, successes = 0, opened_at = gateway_now(),
            times_opened = times_opened + 1
            WHERE key = p_key;
        DELETE FROM breaker_trials WHERE key = p_key;
        RETURN 'open';
    ELSIF p_outcome = 'failure' THEN
        UPDATE breakers SET failures = failures + 1 WHERE key = p_key;
    ELSIF b.state = 'half_open' AND b.successes + 1 >= p_success_threshold THEN
        UPDATE breakers SET state = 'closed', generation = generation + 1, failures = 0,
            successes = 0, opened_at = NULL
            WHERE key = p_key;
        DELETE FROM breaker_trials WHERE key = p_key;
        RETURN 'closed';
    ELSIF b.state = 'half_open' THEN
        UPDATE breakers SET successes = successes + 1 WHERE key = p_key;
    ELSIF b.failures > 0 THEN
        UPDATE breakers SET failures = 0 WHERE key = p_key;
    END IF;
    RETURN NULL;
END $$;
"""


class CoordinationTables(PostgresBase):
    """The `gateway.store.interfaces.Coordination` operations on PostgreSQL."""

    async def take_permit(
        self,
        key: str,
        windows: Sequence[tuple[int, float]],
        concurrent: int | None,
        permit: str,
        lease: float,
    ) -> float:
        wait = await self.pool.fetchval(
            "SELECT gateway_take_permit($1, $2, $3, $4, $5, $6)",
            key,
            [limit for limit, _ in windows],
            [seconds for _, seconds in windows],
            concurrent,
            permit,
            lease,
        )
        return float(wait)

    async def release_permit(self, key: str, permit: str, *, sent: bool) -> None:
        await self.pool.execute(
            "WITH lease AS (DELETE FROM rate_leases WHERE key = $1 AND permit = $2)"
            " DELETE FROM rate_starts WHERE key = $1 AND permit = $2 AND NOT $3",
            key,
            permit,
            sent,
        )

    async def breaker_admit(
        self, key: str, timeout: float, max_trials: int, ticket: str | None, lease: float
    ) -> tuple[str, int, float]:
        row = await self.pool.fetchrow(
            "SELECT verdict, generation, wait FROM gateway_breaker_admit($1, $2, $3, $4, $5)",
            key,
            timeout,
            max_trials,
            ticket,
            lease,
        )
        assert row is not None
        return str(row[0]), int(row[1]), float(row[2])

    async def breaker_report(
        self,
        key: str,
        generation: int,
        ticket: str | None,
        outcome: str,
        failure_threshold: int,
        success_threshold: int,
    ) -> str | None:
        changed = await self.pool.fetchval(
            "SELECT gateway_breaker_report($1, $2, $3, $4, $5, $6)",
            key,
            generation,
            ticket,
            outcome,
            failure_threshold,
            success_threshold,
        )
        return None if changed is None else str(changed)

    async def breaker_status(self, key: str) -> tuple[str, int, int, float | None, int] | None:
        row = await self.pool.fetchrow(
            "SELECT state, failures, successes,"
            " opened_at - gateway_now(), times_opened FROM breakers WHERE key = $1",
            key,
        )
        if row is None:
            return None
        return str(row[0]), int(row[1]), int(row[2]), row[3], int(row[4])

    async def claim_leadership(self, name: str, holder: str, lease: float) -> int | None:
        term = await self.pool.fetchval(
            "INSERT INTO leaders AS l (name, holder, term, until)"
            " VALUES ($1, $2, 1, gateway_now() + $3)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " term = CASE WHEN l.holder = excluded.holder AND l.until > gateway_now()"
            " THEN l.term ELSE l.term + 1 END, until = excluded.until"
            " WHERE l.holder = excluded.holder OR l.until <= gateway_now()"
            " RETURNING term",
            name,
            holder,
            lease,
        )
        return None if term is None else int(term)

    async def resign_leadership(self, name: str, holder: str) -> None:
        await self.pool.execute(
            "UPDATE leaders SET until = 0 WHERE name = $1 AND holder = $2", name, holder
        )
