//! Traffic shapes beyond one token: the protected route with many distinct access
//! tokens, drawn uniformly or by a Zipf law, and the setup that gets those tokens (one
//! `POST /auth/refresh` each, from refresh tokens the seeder made).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tokio::task::JoinSet;

use crate::client::Conn;
use crate::scenarios::{collect, Target, Timing};
use crate::stats::{Recorder, Summary};

/// How a worker picks the next token.
#[derive(Debug, Clone)]
pub(crate) enum Draw {
    /// Every token equally likely.
    Uniform,
    /// Token `k` (from 0) with probability proportional to `1 / (k + 1)^s`: the
    /// cumulative distribution, ascending, ending at 1.
    Zipf(Arc<[f64]>),
}

impl Draw {
    /// A Zipf law of exponent `s` over `n` tokens.
    pub(crate) fn zipf(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += (k as f64).powf(-s);
            cdf.push(sum);
        }
        for x in &mut cdf {
            *x /= sum;
        }
        Self::Zipf(cdf.into())
    }

    /// The share of draws that land on the `top` most likely tokens.
    pub(crate) fn top_share(&self, top: usize, n: usize) -> f64 {
        match self {
            Self::Uniform => top.min(n) as f64 / n.max(1) as f64,
            Self::Zipf(cdf) => match top.min(cdf.len()) {
                0 => 0.0,
                k => cdf[k - 1],
            },
        }
    }

    fn pick(&self, rng: &mut Rng, n: usize) -> usize {
        match self {
            Self::Uniform => rng.below(n as u64) as usize,
            Self::Zipf(cdf) => {
                let u = rng.unit();
                cdf.partition_point(|&x| x < u).min(n - 1)
            }
        }
    }
}

/// xorshift64*: a few cycles per draw, deterministic per worker.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `connections` workers sending `GET` on the protected route, each request with a token
/// drawn from `tokens` by `draw`.
pub(crate) async fn protected_drawn(
    target: Target,
    tokens: Arc<Vec<Arc<str>>>,
    draw: Draw,
    connections: usize,
    timing: Timing,
) -> Result<Summary> {
    if tokens.is_empty() {
        bail!("no tokens to draw from");
    }
    let window = timing.window();
    let mut set = JoinSet::new();
    for w in 0..connections {
        let (tokens, draw) = (tokens.clone(), draw.clone());
        set.spawn(async move {
            let mut conn = Conn::new(target.addr);
            let mut rng = Rng::new(w as u64 + 1);
            let mut recorder = Recorder::default();
            while window.open() {
                let token = &tokens[draw.pick(&mut rng, tokens.len())];
                let started = Instant::now();
                let ok = conn
                    .get(target.api.protected_path(), Some(token))
                    .await
                    .is_ok_and(|r| r.ok());
                recorder.record(&window, started, ok);
            }
            recorder
        });
    }
    collect(set, &window).await
}

/// Present every token once on the protected route over `connections` connections
/// (not measured): a server's verified-token cache then holds what its policy keeps.
/// Returns how many were refused.
pub(crate) async fn present_all(
    target: Target,
    tokens: Arc<Vec<Arc<str>>>,
    connections: usize,
) -> Result<usize> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..connections {
        let (tokens, next) = (tokens.clone(), next.clone());
        set.spawn(async move {
            let mut conn = Conn::new(target.addr);
            let mut refused = 0;
            while let Some(token) = tokens.get(next.fetch_add(1, Ordering::Relaxed)) {
                let ok = conn
                    .get(target.api.protected_path(), Some(token))
                    .await
                    .is_ok_and(|r| r.ok());
                refused += usize::from(!ok);
            }
            refused
        });
    }
    let mut refused = 0;
    while let Some(done) = set.join_next().await {
        refused += done?;
    }
    Ok(refused)
}

/// Exchange each refresh token for an access token (one `POST /auth/refresh` each, over
/// `connections` connections), in order.
pub(crate) async fn exchange(
    target: Target,
    refresh_tokens: &[String],
    connections: usize,
) -> Result<Vec<Arc<str>>> {
    let refresh = Arc::new(refresh_tokens.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..connections {
        let (refresh, next) = (refresh.clone(), next.clone());
        set.spawn(async move {
            let mut conn = Conn::new(target.addr);
            let mut got = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = refresh.get(i) else {
                    return Ok::<_, anyhow::Error>(got);
                };
                let response = conn
                    .post_json("/auth/refresh", target.api.refresh_body(token))
                    .await?;
                if !response.ok() {
                    bail!(
                        "refreshing seeded token {i}: {} {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    );
                }
                let tokens = target
                    .api
                    .tokens(&response.body)
                    .context("the refresh response has no token pair")?;
                got.push((i, Arc::<str>::from(tokens.access)));
            }
        });
    }
    let mut access: Vec<Option<Arc<str>>> = vec![None; refresh_tokens.len()];
    while let Some(done) = set.join_next().await {
        for (i, token) in done?? {
            access[i] = Some(token);
        }
    }
    access
        .into_iter()
        .map(|t| t.context("a refresh token was not exchanged"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_favours_the_first_tokens() {
        let draw = Draw::zipf(100_000, 1.1);
        let top = draw.top_share(4096, 100_000);
        assert!((0.7..0.9).contains(&top), "{top}");
        let mut rng = Rng::new(1);
        let mut low = 0;
        for _ in 0..10_000 {
            let k = draw.pick(&mut rng, 100_000);
            assert!(k < 100_000);
            low += usize::from(k < 4096);
        }
        assert!((7_000..9_000).contains(&low), "{low}");
        assert!((Draw::Uniform.top_share(4096, 100_000) - 0.04096).abs() < 1e-9);
    }
}
