//! Fault injection for the sandbox: the `--faults` spec, the seeded per-request decisions, and ARM's
//! token buckets.
//!
//! Spec syntax: comma-separated `key=value` pairs, e.g.
//! `seed=7,throttle-every=5,retry-after=1,bucket=arm,error500=0.05,error503=0.05,latency=20ms,lro-fail=0.1,drop=0.02`.
//! An empty spec or `none` means no faults.
//!
//! | key | value | effect |
//! |---|---|---|
//! | `seed` | integer (default 0) | seeds every random decision; same seed and same request sequence, same faults |
//! | `throttle-every` | N >= 1 | every Nth faultable request answers 429 `SubscriptionRequestsThrottled` |
//! | `retry-after` | seconds (default 1) | `Retry-After` of those 429s and of the 503s |
//! | `bucket` | `arm` \| `off` | ARM's token buckets per subscription: reads 250 refilled 25/s, writes and deletes 200 refilled 10/s |
//! | `error500` / `error503` | probability 0..=1 | answer 500 `InternalServerError` / 503 `ServiceUnavailable` |
//! | `latency` | `20ms`, `1s`, or a range `10ms..50ms` | delay before answering |
//! | `lro-fail` | probability | a long-running operation ends `Failed` and changes nothing |
//! | `drop` | probability | close the TCP connection without answering |
//! | `ops` | operation names joined by `\|` | only these operations (names of `arm::operations`) get the faults above, except the buckets |
//!
//! Decisions are a pure function of (seed, n, fault kind), where n counts the faultable requests
//! since the spec was set, so a sequential client sees the same faults on every run.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use super::routing;

const SYNTAX: &str = "expected key=value[,key=value...] with keys seed=N, throttle-every=N, retry-after=SECONDS, \
bucket=arm|off, error500=P, error503=P, latency=DURATION[..DURATION], lro-fail=P, drop=P, ops=NAME|NAME \
(P a probability between 0 and 1, DURATION like 20ms or 1s); an empty spec or `none` disables faults";

/// A bad `--faults` spec: names the key and shows the syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault spec at `{key}`: {problem}; {SYNTAX}")]
pub struct FaultSpecError {
    pub key: String,
    pub problem: String,
}

/// The parsed `--faults` spec. `Default` is "no faults".
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    pub seed: u64,
    pub throttle_every: Option<u64>,
    pub retry_after_secs: u64,
    pub bucket: bool,
    pub error500: f64,
    pub error503: f64,
    /// Inclusive range; a fixed latency has min == max.
    pub latency: Option<(Duration, Duration)>,
    pub lro_fail: f64,
    pub drop: f64,
    /// When set, only these operations get faults (the buckets apply to all).
    pub ops: Option<BTreeSet<String>>,
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            seed: 0,
            throttle_every: None,
            retry_after_secs: 1,
            bucket: false,
            error500: 0.0,
            error503: 0.0,
            latency: None,
            lro_fail: 0.0,
            drop: 0.0,
            ops: None,
        }
    }
}

impl FaultSpec {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn parse(spec: &str) -> Result<Self, FaultSpecError> {
        let mut out = FaultSpec::default();
        let trimmed = spec.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            return Ok(out);
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for item in trimmed.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = item.split_once('=').ok_or_else(|| FaultSpecError {
                key: item.to_string(),
                problem: "missing `=value`".into(),
            })?;
            let key = key.trim();
            let value = value.trim();
            let err = |problem: String| FaultSpecError {
                key: key.to_string(),
                problem,
            };
            if !seen.insert(key.to_ascii_lowercase()) {
                return Err(err("given twice".into()));
            }
            match key.to_ascii_lowercase().as_str() {
                "seed" => {
                    out.seed = value
                        .parse()
                        .map_err(|_| err(format!("`{value}` is not a non-negative integer")))?
                }
                "throttle-every" => {
                    let n: u64 = value
                        .parse()
                        .map_err(|_| err(format!("`{value}` is not an integer >= 1")))?;
                    if n == 0 {
                        return Err(err("must be at least 1".into()));
                    }
                    out.throttle_every = Some(n);
                }
                "retry-after" => {
                    out.retry_after_secs = value
                        .parse()
                        .map_err(|_| err(format!("`{value}` is not a whole number of seconds")))?
                }
                "bucket" => {
                    out.bucket = match value.to_ascii_lowercase().as_str() {
                        "arm" => true,
                        "off" | "none" => false,
                        _ => return Err(err(format!("`{value}` is not `arm` or `off`"))),
                    }
                }
                "error500" => out.error500 = probability(value).map_err(err)?,
                "error503" => out.error503 = probability(value).map_err(err)?,
                "lro-fail" => out.lro_fail = probability(value).map_err(err)?,
                "drop" => out.drop = probability(value).map_err(err)?,
                "latency" => {
                    let (lo, hi) = match value.split_once("..") {
                        Some((a, b)) => (duration(a).map_err(err)?, duration(b).map_err(err)?),
                        None => {
                            let d = duration(value).map_err(err)?;
                            (d, d)
                        }
                    };
                    if hi < lo {
                        return Err(err(format!("range `{value}` ends before it starts")));
                    }
                    out.latency = Some((lo, hi));
                }
                "ops" => {
                    let mut names = BTreeSet::new();
                    for name in value.split('|').map(str::trim).filter(|n| !n.is_empty()) {
                        if !routing::is_operation_name(name) {
                            return Err(err(format!(
                                "unknown operation `{name}`; known: {}",
                                routing::operation_names().join(", ")
                            )));
                        }
                        names.insert(name.to_string());
                    }
                    if names.is_empty() {
                        return Err(err("needs at least one operation name".into()));
                    }
                    out.ops = Some(names);
                }
                _ => return Err(err("unknown key".into())),
            }
        }
        Ok(out)
    }

    /// True when no fault of any kind is configured.
    pub fn is_none(&self) -> bool {
        self.throttle_every.is_none()
            && !self.bucket
            && self.error500 == 0.0
            && self.error503 == 0.0
            && self.latency.is_none()
            && self.lro_fail == 0.0
            && self.drop == 0.0
    }

    /// Whether faults apply to this operation (`None`: an unrouted request).
    pub fn applies_to(&self, operation: Option<&str>) -> bool {
        match (&self.ops, operation) {
            (None, _) => true,
            (Some(ops), Some(op)) => ops.contains(op),
            (Some(_), None) => false,
        }
    }

    /// The decisions for the `n`th faultable request (1-based).
    pub fn decide(&self, n: u64) -> Decision {
        let draw = |salt| unit(self.seed, n, salt);
        let latency = self.latency.map(|(lo, hi)| {
            if hi == lo {
                lo
            } else {
                let span = (hi - lo).as_secs_f64();
                lo + Duration::from_secs_f64(span * draw(SALT_LATENCY))
            }
        });
        let error = if draw(SALT_500) < self.error500 {
            Some(500)
        } else if draw(SALT_503) < self.error503 {
            Some(503)
        } else {
            None
        };
        Decision {
            latency,
            drop: draw(SALT_DROP) < self.drop,
            throttle: self
                .throttle_every
                .is_some_and(|every| n.is_multiple_of(every)),
            error,
            lro_fail: draw(SALT_LRO) < self.lro_fail,
        }
    }
}

impl fmt::Display for FaultSpec {
    /// The canonical spec text (parses back to the same spec).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        let mut parts = vec![format!("seed={}", self.seed)];
        if let Some(n) = self.throttle_every {
            parts.push(format!("throttle-every={n}"));
        }
        parts.push(format!("retry-after={}", self.retry_after_secs));
        if self.bucket {
            parts.push("bucket=arm".into());
        }
        for (key, p) in [
            ("error500", self.error500),
            ("error503", self.error503),
            ("lro-fail", self.lro_fail),
            ("drop", self.drop),
        ] {
            if p > 0.0 {
                parts.push(format!("{key}={p}"));
            }
        }
        if let Some((lo, hi)) = self.latency {
            if lo == hi {
                parts.push(format!("latency={}ms", lo.as_millis()));
            } else {
                parts.push(format!(
                    "latency={}ms..{}ms",
                    lo.as_millis(),
                    hi.as_millis()
                ));
            }
        }
        if let Some(ops) = &self.ops {
            parts.push(format!(
                "ops={}",
                ops.iter().cloned().collect::<Vec<_>>().join("|")
            ));
        }
        f.write_str(&parts.join(","))
    }
}

/// What the faults say about one request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Decision {
    pub latency: Option<Duration>,
    pub drop: bool,
    pub throttle: bool,
    /// 500 or 503.
    pub error: Option<u16>,
    pub lro_fail: bool,
}

fn probability(value: &str) -> Result<f64, String> {
    let p: f64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("`{value}` is not a probability between 0 and 1"));
    }
    Ok(p)
}

fn duration(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    let (number, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if v == "0" {
        ("0", 1.0)
    } else {
        return Err(format!("`{value}` needs a unit: ms or s (e.g. 20ms)"));
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a duration like 20ms or 1s"))?;
    if !(0.0..=60.0 / scale).contains(&n) {
        return Err(format!("`{value}` must be between 0 and 60s"));
    }
    Ok(Duration::from_secs_f64(n * scale))
}

const SALT_LATENCY: u64 = 1;
const SALT_DROP: u64 = 2;
const SALT_500: u64 = 3;
const SALT_503: u64 = 4;
const SALT_LRO: u64 = 5;

/// splitmix64: a fixed, well-mixed hash, so decisions do not depend on an RNG crate's version.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform draw in [0, 1) for (seed, n, salt).
fn unit(seed: u64, n: u64, salt: u64) -> f64 {
    let x = splitmix64(seed ^ splitmix64(n ^ splitmix64(salt)));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The kind of ARM quota a request draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaClass {
    Reads,
    Writes,
    Deletes,
}

impl QuotaClass {
    pub fn for_method(method: &str) -> Self {
        match method {
            "GET" | "HEAD" => QuotaClass::Reads,
            "DELETE" => QuotaClass::Deletes,
            _ => QuotaClass::Writes,
        }
    }
    /// (bucket size, refill per second): ARM's regional token bucket per subscription.
    pub fn limits(self) -> (f64, f64) {
        match self {
            QuotaClass::Reads => (250.0, 25.0),
            QuotaClass::Writes | QuotaClass::Deletes => (200.0, 10.0),
        }
    }
    /// `x-ms-ratelimit-remaining-subscription-*` header name.
    pub fn header(self) -> &'static str {
        match self {
            QuotaClass::Reads => "x-ms-ratelimit-remaining-subscription-reads",
            QuotaClass::Writes => "x-ms-ratelimit-remaining-subscription-writes",
            QuotaClass::Deletes => "x-ms-ratelimit-remaining-subscription-deletes",
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by (subscription, class); the tenant-level calls (`GET /subscriptions`)
/// use the empty subscription.
#[derive(Debug, Default)]
pub struct Buckets {
    buckets: HashMap<(String, QuotaClass), Bucket>,
}

/// Outcome of drawing a token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Take {
    /// Allowed; this many whole tokens remain.
    Allowed(u64),
    /// Empty; retry after this many seconds.
    Throttled(u64),
}

impl Buckets {
    pub fn take(&mut self, subscription: &str, class: QuotaClass, now: Instant) -> Take {
        let (size, refill) = class.limits();
        let bucket = self
            .buckets
            .entry((subscription.to_ascii_lowercase(), class))
            .or_insert(Bucket {
                tokens: size,
                last: now,
            });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * refill).min(size);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Take::Allowed(bucket.tokens.floor() as u64)
        } else {
            let wait = ((1.0 - bucket.tokens) / refill).ceil().max(1.0);
            Take::Throttled(wait as u64)
        }
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_spec_parses_and_round_trips() {
        let spec = FaultSpec::parse(
            "seed=7,throttle-every=5,retry-after=2,bucket=arm,error500=0.05,error503=0.05,latency=20ms,lro-fail=0.1,drop=0.02,ops=put-connection|get-registry",
        )
        .unwrap();
        assert_eq!(spec.seed, 7);
        assert_eq!(spec.throttle_every, Some(5));
        assert_eq!(spec.retry_after_secs, 2);
        assert!(spec.bucket);
        assert_eq!(
            spec.latency,
            Some((Duration::from_millis(20), Duration::from_millis(20)))
        );
        assert_eq!(spec.ops.as_ref().map(BTreeSet::len), Some(2));
        assert_eq!(FaultSpec::parse(&spec.to_string()).unwrap(), spec);
        assert!(FaultSpec::parse("").unwrap().is_none());
        assert!(FaultSpec::parse("none").unwrap().is_none());
        assert_eq!(FaultSpec::parse("none").unwrap().to_string(), "none");
        let range = FaultSpec::parse("latency=10ms..1s").unwrap();
        assert_eq!(
            range.latency,
            Some((Duration::from_millis(10), Duration::from_secs(1)))
        );
    }

    #[test]
    fn bad_specs_name_the_key_and_show_the_syntax() {
        for (spec, key, problem) in [
            ("error500=2", "error500", "probability"),
            ("drop=x", "drop", "not a number"),
            ("throttle-every=0", "throttle-every", "at least 1"),
            ("latency=20", "latency", "unit"),
            ("latency=50ms..10ms", "latency", "ends before"),
            ("bucket=yes", "bucket", "`arm` or `off`"),
            ("colour=red", "colour", "unknown key"),
            ("seed", "seed", "missing `=value`"),
            ("seed=1,seed=2", "seed", "given twice"),
            ("ops=get-everything", "ops", "unknown operation"),
        ] {
            let err = FaultSpec::parse(spec).unwrap_err();
            assert_eq!(err.key, key, "{spec}");
            assert!(err.problem.contains(problem), "{spec}: {}", err.problem);
            assert!(err.to_string().contains("key=value"), "{err}");
        }
    }

    #[test]
    fn decisions_are_a_function_of_seed_and_sequence() {
        let a = FaultSpec::parse("seed=7,error500=0.3,drop=0.2,latency=1ms..9ms").unwrap();
        let b = FaultSpec::parse("seed=8,error500=0.3,drop=0.2,latency=1ms..9ms").unwrap();
        let seq_a: Vec<Decision> = (1..=200).map(|n| a.decide(n)).collect();
        let again: Vec<Decision> = (1..=200).map(|n| a.decide(n)).collect();
        let seq_b: Vec<Decision> = (1..=200).map(|n| b.decide(n)).collect();
        assert_eq!(seq_a, again);
        assert_ne!(seq_a, seq_b);
        let errors = seq_a.iter().filter(|d| d.error == Some(500)).count();
        assert!(
            (30..=90).contains(&errors),
            "about 30% of 200 expected, got {errors}"
        );
        assert!(seq_a.iter().all(|d| {
            d.latency
                .is_some_and(|l| l >= Duration::from_millis(1) && l <= Duration::from_millis(9))
        }));
    }

    #[test]
    fn throttle_every_hits_every_nth() {
        let spec = FaultSpec::parse("throttle-every=3").unwrap();
        let hits: Vec<u64> = (1..=10).filter(|n| spec.decide(*n).throttle).collect();
        assert_eq!(hits, vec![3, 6, 9]);
    }

    #[test]
    fn bucket_empties_and_refills() {
        let mut buckets = Buckets::default();
        let t0 = Instant::now();
        for i in 0..250u64 {
            assert_eq!(
                buckets.take("S", QuotaClass::Reads, t0),
                Take::Allowed(249 - i)
            );
        }
        assert_eq!(buckets.take("s", QuotaClass::Reads, t0), Take::Throttled(1));
        // writes have their own bucket; another subscription too
        assert_eq!(
            buckets.take("s", QuotaClass::Writes, t0),
            Take::Allowed(199)
        );
        assert_eq!(
            buckets.take("other", QuotaClass::Reads, t0),
            Take::Allowed(249)
        );
        // 25 tokens per second
        assert_eq!(
            buckets.take("s", QuotaClass::Reads, t0 + Duration::from_secs(1)),
            Take::Allowed(24)
        );
    }
}
