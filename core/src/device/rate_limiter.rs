//! Firecracker's rate limiter, in simulated time.
//!
//! Written from Firecracker's `src/vmm/src/rate_limiter/mod.rs` (read at
//! `81b38b9d`; the pmem device uses it since v1.16.0, see
//! `docs/personalities.md`). Two token buckets, `bandwidth` (bytes) and
//! `ops`, each of `size` tokens that refill from empty to full in
//! `refill_time` milliseconds, plus a `one_time_burst` that is spent first
//! and never refills. A bucket of `size` 0 or `refill_time` 0 is disabled
//! (Firecracker accepts such a configuration and does not limit).
//!
//! What Firecracker does, and this module does with [`SimTime`] for
//! `Instant::now()` and a deadline for its `TimerFd`:
//! - a bucket starts full; it refills only when a consume finds it short
//!   (`auto_replenish`), in proportion to the time since its last update,
//!   carrying the fraction of a token over to the next refill;
//! - consuming more than the budget arms the limiter's timer for 100 ms
//!   (`REFILL_TIMER_DURATION`) and fails: the limiter is *blocked*, every
//!   consume fails until the timer fires, whatever the buckets hold;
//! - consuming more than the bucket's `size` (over-consumption) succeeds,
//!   empties the bucket and arms the timer for `ratio × refill_time` ms,
//!   `ratio` being the tokens not covered by the budget over `size`
//!   (truncated to whole milliseconds). A ratio that truncates to 0 ms arms
//!   a `TimerFd` with a zero time, which *disarms* it: the limiter stays
//!   blocked and no timer ever fires ([`TimerState::Disarmed`]).

use crate::time::SimTime;
use serde::{Deserialize, Serialize};

/// Firecracker's `REFILL_TIMER_DURATION`: the timer armed when a bucket runs
/// dry, in nanoseconds (100 ms).
pub const REFILL_TIMER_NS: u64 = 100_000_000;

const NS_PER_MS: u64 = 1_000_000;

/// One bucket as Firecracker's API takes it (`TokenBucketConfig`): `size`
/// tokens, refilled from empty in `refill_time` ms, and an optional
/// `one_time_burst` of extra tokens that do not refill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenBucketConfig {
    /// Capacity in tokens (bytes for `bandwidth`, operations for `ops`).
    pub size: u64,
    /// Initial extra tokens, spent before the budget, never refilled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_burst: Option<u64>,
    /// Milliseconds from an empty bucket to a full one.
    pub refill_time: u64,
}

/// A rate limiter as Firecracker's API takes it (`RateLimiterConfig`): a
/// `bandwidth` bucket (bytes) and an `ops` bucket, each optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimiterConfig {
    /// Bytes: a pmem flush costs the whole file length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<TokenBucketConfig>,
    /// Operations: a pmem notification costs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<TokenBucketConfig>,
}

/// Which bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// The `bandwidth` bucket.
    Bytes,
    /// The `ops` bucket.
    Ops,
}

impl TokenType {
    /// The bucket's name in the configuration.
    pub fn bucket_name(self) -> &'static str {
        match self {
            TokenType::Bytes => "bandwidth",
            TokenType::Ops => "ops",
        }
    }
}

/// Why the device did not handle a notification when it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Throttle {
    /// The limiter was already blocked (`process_queue`): the notification
    /// is dropped; the queue is handled when the timer fires.
    Blocked,
    /// The `ops` bucket had no token for this notification: the timer is
    /// armed (100 ms) and handles the queue.
    Ops,
    /// The `bandwidth` bucket could not pay the file length: the op is
    /// given back, the timer armed (100 ms) and handles the queue.
    Bandwidth,
}

/// What one `reduce` of a bucket did (Firecracker's `BucketReduction`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BucketReduction {
    /// Not enough tokens: nothing consumed.
    Failure,
    /// Consumed.
    Success,
    /// More than the bucket's size: consumed, the bucket emptied; the
    /// tokens not covered were this many times the size.
    OverConsumption(f64),
}

/// One token bucket's state (Firecracker's `TokenBucket`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucket {
    size: u64,
    initial_one_time_burst: u64,
    refill_time_ms: u64,
    one_time_burst: u64,
    budget: u64,
    last_update: SimTime,
    processed_capacity: u64,
    processed_refill_time: u64,
}

fn gcd(mut x: u64, mut y: u64) -> u64 {
    while y != 0 {
        (x, y) = (y, x % y);
    }
    x
}

impl TokenBucket {
    /// A full bucket created at `now`; `None` (limiting disabled) when
    /// `size` or `refill_time` is 0, or the refill time in nanoseconds does
    /// not fit 64 bits — as Firecracker's `TokenBucket::new`.
    pub fn new(cfg: TokenBucketConfig, now: SimTime) -> Option<TokenBucket> {
        if cfg.size == 0 || cfg.refill_time == 0 {
            return None;
        }
        let refill_ns = cfg.refill_time.checked_mul(NS_PER_MS)?;
        let common = gcd(cfg.size, refill_ns);
        let burst = cfg.one_time_burst.unwrap_or(0);
        Some(TokenBucket {
            size: cfg.size,
            initial_one_time_burst: burst,
            refill_time_ms: cfg.refill_time,
            one_time_burst: burst,
            budget: cfg.size,
            last_update: now,
            processed_capacity: cfg.size / common,
            processed_refill_time: refill_ns / common,
        })
    }

    /// Tokens in the budget now (the one-time burst aside).
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// One-time-burst tokens left.
    pub fn one_time_burst(&self) -> u64 {
        self.one_time_burst
    }

    /// Capacity.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Refills in proportion to the time since the last update, carrying
    /// the time of a fractional token over (`auto_replenish`).
    fn auto_replenish(&mut self, now: SimTime) {
        let delta = u128::from(now.as_nanos().saturating_sub(self.last_update.as_nanos()));
        if delta >= u128::from(self.refill_time_ms * NS_PER_MS) {
            self.budget = self.size;
            self.last_update = now;
            return;
        }
        let (cap, refill) = (u128::from(self.processed_capacity), u128::from(self.processed_refill_time));
        let tokens = delta * cap / refill;
        // The least time that makes `tokens`, rounded up.
        let used = (tokens * refill).div_ceil(cap);
        self.last_update = self.last_update.plus_nanos(used as u64);
        self.budget = self.budget.saturating_add(tokens as u64).min(self.size);
    }

    /// Takes `tokens` at `now`: burst first, then the budget, refilling
    /// when short (`reduce`).
    pub fn reduce(&mut self, mut tokens: u64, now: SimTime) -> BucketReduction {
        if self.one_time_burst > 0 {
            if self.one_time_burst >= tokens {
                self.one_time_burst -= tokens;
                self.last_update = now;
                return BucketReduction::Success;
            }
            tokens -= self.one_time_burst;
            self.one_time_burst = 0;
        }
        if tokens > self.budget {
            self.auto_replenish(now);
            if tokens > self.size {
                tokens -= self.budget;
                self.budget = 0;
                return BucketReduction::OverConsumption(tokens as f64 / self.size as f64);
            }
            if tokens > self.budget {
                return BucketReduction::Failure;
            }
        }
        self.budget -= tokens;
        BucketReduction::Success
    }

    /// Gives `tokens` back (`force_replenish`): to the burst while one is
    /// left (up to its initial size), else to the budget (up to the size).
    pub fn force_replenish(&mut self, tokens: u64) {
        if self.one_time_burst > 0 {
            self.one_time_burst = self.one_time_burst.saturating_add(tokens).min(self.initial_one_time_burst);
            return;
        }
        self.budget = self.budget.saturating_add(tokens).min(self.size);
    }
}

/// The limiter's timer (Firecracker's `TimerFd` and `timer_active`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimerState {
    /// Not armed: consumes may succeed.
    Idle,
    /// Armed: the limiter is blocked until the timer fires at this time.
    Armed(SimTime),
    /// Armed with a zero time, which disarms a `TimerFd`: the limiter is
    /// blocked and the timer never fires.
    Disarmed,
}

/// A timer event for a limiter whose timer is not armed
/// (`SpuriousRateLimiterEvent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rate limiter event handler called without a present timer")]
pub struct SpuriousTimer;

/// Firecracker's `RateLimiter`: two optional buckets and one timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimiter {
    bandwidth: Option<TokenBucket>,
    ops: Option<TokenBucket>,
    timer: TimerState,
}

impl RateLimiter {
    /// A limiter created at `now` (its buckets full).
    pub fn new(cfg: &RateLimiterConfig, now: SimTime) -> RateLimiter {
        RateLimiter {
            bandwidth: cfg.bandwidth.and_then(|b| TokenBucket::new(b, now)),
            ops: cfg.ops.and_then(|b| TokenBucket::new(b, now)),
            timer: TimerState::Idle,
        }
    }

    fn bucket(&mut self, kind: TokenType) -> Option<&mut TokenBucket> {
        match kind {
            TokenType::Bytes => self.bandwidth.as_mut(),
            TokenType::Ops => self.ops.as_mut(),
        }
    }

    /// The bucket of `kind`, if enabled.
    pub fn bucket_state(&self, kind: TokenType) -> Option<&TokenBucket> {
        match kind {
            TokenType::Bytes => self.bandwidth.as_ref(),
            TokenType::Ops => self.ops.as_ref(),
        }
    }

    /// Arms the timer `ns` from `now`; zero disarms it, as `timerfd_settime`.
    fn arm(&mut self, now: SimTime, ns: u64) {
        self.timer = if ns == 0 { TimerState::Disarmed } else { TimerState::Armed(now.plus_nanos(ns)) };
    }

    /// Tries to take `tokens` of `kind` at `now` (`consume`). Fails at once
    /// while blocked; a bucket that runs dry blocks the limiter for 100 ms;
    /// an over-consumption succeeds and blocks it for `ratio × refill_time`.
    /// A disabled bucket always succeeds.
    pub fn consume(&mut self, tokens: u64, kind: TokenType, now: SimTime) -> bool {
        if self.is_blocked() {
            return false;
        }
        let Some(bucket) = self.bucket(kind) else {
            return true;
        };
        let refill_ms = bucket.refill_time_ms;
        match bucket.reduce(tokens, now) {
            BucketReduction::Failure => {
                self.arm(now, REFILL_TIMER_NS);
                false
            }
            BucketReduction::Success => true,
            BucketReduction::OverConsumption(ratio) => {
                // Firecracker: Duration::from_millis((ratio * refill_time as f64) as u64).
                let ms = (ratio * refill_ms as f64) as u64;
                self.arm(now, ms.saturating_mul(NS_PER_MS));
                true
            }
        }
    }

    /// Gives `tokens` back to the bucket of `kind` (`manual_replenish`).
    pub fn manual_replenish(&mut self, tokens: u64, kind: TokenType) {
        if let Some(bucket) = self.bucket(kind) {
            bucket.force_replenish(tokens);
        }
    }

    /// True while the timer is armed (or disarmed by a zero time).
    pub fn is_blocked(&self) -> bool {
        self.timer != TimerState::Idle
    }

    /// The timer.
    pub fn timer(&self) -> TimerState {
        self.timer
    }

    /// When the timer fires, if it will.
    pub fn fires_at(&self) -> Option<SimTime> {
        match self.timer {
            TimerState::Armed(t) => Some(t),
            _ => None,
        }
    }

    /// The timer fired (`event_handler`): the limiter unblocks. A timer that
    /// is not armed to fire by `now` is spurious.
    pub fn timer_fired(&mut self, now: SimTime) -> Result<(), SpuriousTimer> {
        match self.timer {
            TimerState::Armed(t) if t <= now => {
                self.timer = TimerState::Idle;
                Ok(())
            }
            _ => Err(SpuriousTimer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = NS_PER_MS;

    fn bucket(size: u64, burst: Option<u64>, refill_time: u64) -> Option<TokenBucketConfig> {
        Some(TokenBucketConfig { size, one_time_burst: burst, refill_time })
    }

    fn ops(size: u64, refill_time: u64) -> RateLimiter {
        RateLimiter::new(&RateLimiterConfig { ops: bucket(size, None, refill_time), bandwidth: None }, SimTime::ZERO)
    }

    #[test]
    fn zero_size_or_refill_time_disables_a_bucket_as_firecracker_does() {
        for (size, refill) in [(0, 1000), (1000, 0), (1, u64::MAX)] {
            let mut l = ops(size, refill);
            assert!(l.bucket_state(TokenType::Ops).is_none(), "{size} {refill}");
            assert!((0..100).all(|_| l.consume(1, TokenType::Ops, SimTime::ZERO)));
            assert!(!l.is_blocked());
        }
    }

    #[test]
    fn a_dry_bucket_blocks_for_100_ms_and_refills_in_proportion() {
        // 10 ops per second: one token per 100 ms.
        let mut l = ops(10, 1000);
        let t0 = SimTime::ZERO;
        assert!((0..10).all(|_| l.consume(1, TokenType::Ops, t0)));
        // Negative control: the 11th fails and blocks.
        assert!(!l.consume(1, TokenType::Ops, t0));
        assert_eq!(l.timer(), TimerState::Armed(SimTime(100 * MS)));
        // Blocked: even a free bucket fails until the timer fires.
        assert!(!l.consume(0, TokenType::Bytes, SimTime(50 * MS)));
        assert_eq!(l.timer_fired(SimTime(50 * MS)), Err(SpuriousTimer));
        l.timer_fired(SimTime(100 * MS)).unwrap();
        // 100 ms made exactly one token.
        assert!(l.consume(1, TokenType::Ops, SimTime(100 * MS)));
        assert!(!l.consume(1, TokenType::Ops, SimTime(100 * MS)));
        assert_eq!(l.timer_fired(SimTime(150 * MS)), Err(SpuriousTimer));
    }

    #[test]
    fn a_fraction_of_a_token_is_carried_over() {
        // 1 token per 100 ms; 150 ms make 1 token, 50 ms wait over; 50 ms
        // more make the second.
        let mut b = TokenBucket::new(bucket(10, None, 1000).unwrap(), SimTime::ZERO).unwrap();
        assert_eq!(b.reduce(10, SimTime::ZERO), BucketReduction::Success);
        assert_eq!(b.reduce(1, SimTime(150 * MS)), BucketReduction::Success);
        assert_eq!(b.budget(), 0);
        assert_eq!(b.reduce(1, SimTime(199 * MS)), BucketReduction::Failure);
        assert_eq!(b.reduce(1, SimTime(200 * MS)), BucketReduction::Success);
    }

    #[test]
    fn the_burst_goes_first_and_a_replenish_returns_to_it() {
        let mut b = TokenBucket::new(bucket(2, Some(3), 1000).unwrap(), SimTime::ZERO).unwrap();
        assert_eq!(b.reduce(2, SimTime::ZERO), BucketReduction::Success);
        assert_eq!((b.one_time_burst(), b.budget()), (1, 2));
        b.force_replenish(5);
        assert_eq!(b.one_time_burst(), 3, "capped at the initial burst");
        // 4 = 3 burst + 1 budget.
        assert_eq!(b.reduce(4, SimTime::ZERO), BucketReduction::Success);
        assert_eq!((b.one_time_burst(), b.budget()), (0, 1));
        b.force_replenish(5);
        assert_eq!(b.budget(), 2, "capped at the size");
    }

    #[test]
    fn over_consumption_succeeds_and_blocks_for_ratio_times_refill_time() {
        // 1000 bytes per second; 2500 bytes from a full bucket: 1500 not
        // covered = 1.5 × size → blocked 1.5 s.
        let cfg = RateLimiterConfig { bandwidth: bucket(1000, None, 1000), ops: None };
        let mut l = RateLimiter::new(&cfg, SimTime::ZERO);
        assert!(l.consume(2500, TokenType::Bytes, SimTime::ZERO));
        assert_eq!(l.fires_at(), Some(SimTime(1500 * MS)));
        assert_eq!(l.bucket_state(TokenType::Bytes).unwrap().budget(), 0);
        l.timer_fired(SimTime(1500 * MS)).unwrap();
        assert!(l.consume(1000, TokenType::Bytes, SimTime(1500 * MS)));
    }

    #[test]
    fn over_consumption_under_a_millisecond_blocks_for_ever() {
        // 1 byte over a full bucket of 4096 refilled in 1 s: 1/4096 × 1000 ms
        // truncates to 0, and a zero TimerFd time disarms the timer.
        let cfg = RateLimiterConfig { bandwidth: bucket(4096, None, 1000), ops: None };
        let mut l = RateLimiter::new(&cfg, SimTime::ZERO);
        assert!(l.consume(4097, TokenType::Bytes, SimTime::ZERO));
        assert_eq!((l.timer(), l.fires_at()), (TimerState::Disarmed, None));
        assert!(!l.consume(1, TokenType::Bytes, SimTime::from_secs(3600)));
        assert_eq!(l.timer_fired(SimTime::from_secs(3600)), Err(SpuriousTimer));
    }

    #[test]
    fn the_config_has_firecrackers_json_shape() {
        let v = serde_json::json!({ "bandwidth": { "size": 4096, "refill_time": 1000, "one_time_burst": 8192 },
                                    "ops": { "size": 1, "refill_time": 1000 } });
        let cfg: RateLimiterConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(cfg.bandwidth, bucket(4096, Some(8192), 1000));
        assert_eq!(serde_json::to_value(cfg).unwrap(), v);
    }
}
