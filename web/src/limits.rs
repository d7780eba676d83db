//! Limits per client: how many booking, verification, move and login requests one client
//! address may make (a keyed GCRA limiter, `governor`), and which address is the client's when
//! a reverse proxy stands in front (`trusted_proxies`: `X-Forwarded-For` is believed only from
//! them). Every "only from this machine" check and every limit uses `client_ip`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::AppError;

/// The limiter of the requests that cost the town something (an email, a held seat, a password
/// check), per client address.
pub struct ClientLimits {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trusted_proxies: Vec<IpAddr>,
}

impl ClientLimits {
    /// `per_minute` requests a minute per client, in bursts of up to `burst`.
    pub fn new(per_minute: u32, burst: u32, trusted_proxies: Vec<IpAddr>) -> Arc<ClientLimits> {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Arc::new(ClientLimits {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            trusted_proxies,
        })
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the last address
    /// in `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        client_ip(peer.ip(), headers, &self.trusted_proxies)
    }

    /// Seconds to wait when the client is over its limit.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&client).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }

    /// Forgets clients that have been quiet long enough to be full again (memory stays bounded).
    pub fn forget_quiet(&self) {
        self.limiter.retain_recent();
    }
}

/// Whether the browser reached this site over HTTPS: directly (`tls::Https`), or through a
/// trusted proxy that says so in `X-Forwarded-Proto`. Cookies are `Secure` then.
#[derive(Debug, Clone, Copy)]
pub struct Scheme {
    pub https: bool,
}

impl ClientLimits {
    pub fn scheme(&self, peer: SocketAddr, headers: &HeaderMap, direct_tls: bool) -> Scheme {
        let proxied_https = self.trusted_proxies.contains(&peer.ip())
            && headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        Scheme {
            https: direct_tls || proxied_https,
        }
    }
}

/// Middleware for the whole site: marks each request with its `Scheme`.
pub async fn mark_scheme(
    State(limits): State<Arc<ClientLimits>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let direct_tls = req.extensions().get::<crate::tls::Https>().is_some();
    let scheme = limits.scheme(peer, req.headers(), direct_tls);
    req.extensions_mut().insert(scheme);
    next.run(req).await
}

/// See `ClientLimits::client_ip` (pure, for tests).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

/// Middleware for a group of pages: its POSTs count against the client's limit; over it, the
/// answer is 429 with `Retry-After` and a page that says so, and nothing is done.
pub async fn limit_posts(
    State(limits): State<Arc<ClientLimits>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let client = limits.client_ip(peer, req.headers());
    match limits.check(client) {
        Ok(()) => next.run(req).await,
        Err(seconds) => {
            tracing::warn!(path = %req.uri().path().split('/').take(2).collect::<Vec<_>>().join("/"), "request over the client's limit");
            AppError::TooManyRequests(seconds).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let h = headers(&["198.51.100.1, 203.0.113.7"]);
        // A stranger cannot choose its address.
        assert_eq!(client_ip(client, &h, &[proxy]), client);
        // Behind the proxy: the last address the proxy saw, not what the client wrote first.
        assert_eq!(client_ip(proxy, &h, &[proxy]), client);
        // No header, or garbage: the proxy itself.
        assert_eq!(client_ip(proxy, &headers(&[]), &[proxy]), proxy);
        assert_eq!(client_ip(proxy, &headers(&["not-an-ip"]), &[proxy]), proxy);
        // Without trusted proxies the header is ignored.
        assert_eq!(client_ip(proxy, &h, &[]), proxy);
    }

    #[test]
    fn a_client_over_its_limit_is_told_how_long_to_wait_and_others_are_not_slowed() {
        let limits = ClientLimits::new(6, 3, Vec::new());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| limits.check(a).is_ok()));
        let wait = limits.check(a).unwrap_err();
        assert!((1..=10).contains(&wait), "{wait}");
        assert!(limits.check(b).is_ok());
    }
}
