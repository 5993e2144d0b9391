//! Which address a request comes from: the TCP peer, or, when the peer is a
//! trusted proxy (an API gateway, a load balancer), the address that proxy
//! reports in `x-forwarded-for` / `x-real-ip`.
//!
//! Headers are attacker-controlled unless a proxy we trust wrote them, so
//! they are read only when the peer is trusted, and `x-forwarded-for` is
//! walked from the right (the entries proxies appended) past trusted hops
//! only: the first untrusted address is the client. Anything left of it was
//! written by that client and is never believed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use gatehouse_domain::ClientInfo;
pub use ipnet::IpNet;
use tonic::codegen::http::HeaderMap;

/// Most `x-forwarded-for` entries looked at; a longer proxy chain is not a
/// real deployment, and the bound keeps a hostile header cheap.
const MAX_FORWARDED_HOPS: usize = 32;

/// How the client's address is found: from the TCP peer, or from the
/// forwarding headers when the peer is one of the trusted proxies.
///
/// - Peer not trusted (or unknown): the peer's address; headers are ignored.
/// - Peer trusted: `x-forwarded-for` (every value, in order) is walked from
///   the right, trusted addresses are skipped, and the first untrusted one is
///   the client. If every entry is trusted the leftmost one is (an internal
///   client behind the proxies). An entry that is not an IP address (with or
///   without a port) is never used, and the walk stops there: whatever is to
///   its left cannot be vouched for. With no usable entry, `x-real-ip` is
///   used if it is an address, else the peer.
///
/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`, as a dual-stack listener
/// reports IPv4 peers) are shown and matched as IPv4.
///
/// The default trusts no proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientIpPolicy {
    trusted: Arc<[IpNet]>,
}

impl ClientIpPolicy {
    /// Trusts the proxies in `trusted`; an empty list trusts none.
    #[must_use]
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self { trusted: trusted.into() }
    }

    /// The trusted proxy networks.
    #[must_use]
    pub fn trusted(&self) -> &[IpNet] {
        &self.trusted
    }

    /// Whether `ip` is a trusted proxy.
    #[must_use]
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address counts as its IPv4 address.
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's address, given the TCP peer and the forwarding headers'
    /// values (`x-forwarded-for` values in the order received). `None` only
    /// when the peer is unknown: headers alone are never believed.
    #[must_use]
    pub fn resolve<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl IntoIterator<Item = &'a str>,
        real_ip: Option<&str>,
    ) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let entries: Vec<&str> = forwarded_for.into_iter().flat_map(|v| v.split(',')).collect();
        let mut leftmost_trusted = None;
        for entry in entries.iter().rev().map(|e| e.trim()).filter(|e| !e.is_empty()).take(MAX_FORWARDED_HOPS) {
            match parse_hop(entry) {
                Some(ip) if self.is_trusted(ip) => leftmost_trusted = Some(ip),
                Some(ip) => return Some(ip),
                None => {
                    leftmost_trusted = None;
                    break;
                }
            }
        }
        leftmost_trusted.or_else(|| real_ip.and_then(|v| parse_hop(v.trim()))).or(Some(peer))
    }

    /// The client's user agent and address, for a request from the TCP
    /// `peer` with `headers`.
    pub(crate) fn client_info(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> ClientInfo {
        let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok());
        let ip = self.client_ip(peer, headers);
        ClientInfo::new(user_agent, ip.map(|ip| ip.to_string()))
    }

    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let forwarded_for = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let real_ip = headers.get("x-real-ip").and_then(|v| v.to_str().ok());
        self.resolve(peer, forwarded_for, real_ip)
    }
}

/// One `x-forwarded-for` entry: an address, possibly with a port
/// (`192.0.2.7:4711`, `[2001:db8::7]:443`), canonicalized.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let ip = entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn policy(trusted: &[&str]) -> ClientIpPolicy {
        ClientIpPolicy::new(trusted.iter().map(|s| net(s)).collect())
    }

    fn client_info(policy: &ClientIpPolicy, peer: &str, headers: &[(&'static str, &str)]) -> ClientInfo {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, value.parse().unwrap());
        }
        policy.client_info(Some(ip(peer)), &map)
    }

    fn client_ip(policy: &ClientIpPolicy, peer: &str, headers: &[(&'static str, &str)]) -> Option<String> {
        client_info(policy, peer, headers).ip
    }

    #[test]
    fn trusted_networks_match_by_prefix_and_family() {
        let p = policy(&["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        assert!(p.is_trusted(ip("10.255.255.255")) && !p.is_trusted(ip("11.0.0.0")));
        assert!(p.is_trusted(ip("192.0.2.7")) && !p.is_trusted(ip("192.0.2.8")));
        assert!(p.is_trusted(ip("2001:db8:ffff::1")) && !p.is_trusted(ip("2001:db9::1")));
        assert!(!p.is_trusted(ip("::a00:1")), "an IPv6 address is not in an IPv4 network");
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_networks() {
        let p = policy(&["10.0.0.0/8"]);
        assert!(p.is_trusted(ip("::ffff:10.1.2.3")));
        assert!(!p.is_trusted(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn forwarding_headers_are_ignored_from_an_untrusted_peer() {
        let p = policy(&["10.0.0.0/8"]);
        let headers = [("x-forwarded-for", "198.51.100.1"), ("x-real-ip", "198.51.100.2")];
        assert_eq!(client_ip(&p, "203.0.113.9", &headers).as_deref(), Some("203.0.113.9"));
        // No trusted proxies at all: the default.
        let headers = [("x-forwarded-for", "198.51.100.1")];
        assert_eq!(client_ip(&ClientIpPolicy::default(), "127.0.0.1", &headers).as_deref(), Some("127.0.0.1"));
        // Without a peer, headers alone are never believed.
        assert_eq!(p.resolve(None, ["198.51.100.1"], Some("198.51.100.2")), None);
    }

    #[test]
    fn forwarding_headers_are_honoured_from_a_trusted_peer() {
        let p = policy(&["10.0.0.0/8", "::1/128"]);
        let headers = [("x-forwarded-for", "198.51.100.1")];
        assert_eq!(client_ip(&p, "10.0.0.2", &headers).as_deref(), Some("198.51.100.1"));
        assert_eq!(client_ip(&p, "::1", &[("x-forwarded-for", "2001:db8::7")]).as_deref(), Some("2001:db8::7"));
        // x-real-ip when there is no x-forwarded-for.
        assert_eq!(client_ip(&p, "10.0.0.2", &[("x-real-ip", "198.51.100.2")]).as_deref(), Some("198.51.100.2"));
        // Neither header: the proxy itself.
        assert_eq!(client_ip(&p, "10.0.0.2", &[]).as_deref(), Some("10.0.0.2"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = policy(&["10.0.0.0/8", "192.0.2.0/24"]);
        // The client forged the first entry; the proxies appended the rest.
        let xff = "1.1.1.1, 198.51.100.1, 192.0.2.10, 10.0.0.3";
        assert_eq!(client_ip(&p, "10.0.0.2", &[("x-forwarded-for", xff)]).as_deref(), Some("198.51.100.1"));
        // Several header values are one list, in order.
        let headers = [("x-forwarded-for", "1.1.1.1, 198.51.100.1"), ("x-forwarded-for", "192.0.2.10")];
        assert_eq!(client_ip(&p, "10.0.0.2", &headers).as_deref(), Some("198.51.100.1"));
        // Every hop trusted: the leftmost is an internal client.
        let headers = [("x-forwarded-for", "10.9.9.9, 192.0.2.10")];
        assert_eq!(client_ip(&p, "10.0.0.2", &headers).as_deref(), Some("10.9.9.9"));
    }

    #[test]
    fn garbage_entries_are_never_the_client() {
        let p = policy(&["10.0.0.0/8"]);
        let at = |xff: &str| client_ip(&p, "10.0.0.2", &[("x-forwarded-for", xff), ("x-real-ip", "198.51.100.9")]);
        // Empty entries are skipped; ports are dropped.
        assert_eq!(at(" , 198.51.100.1 ,, ").as_deref(), Some("198.51.100.1"));
        assert_eq!(at("198.51.100.1:4711").as_deref(), Some("198.51.100.1"));
        assert_eq!(at("[2001:db8::7]:443").as_deref(), Some("2001:db8::7"));
        // A garbage entry left of the client is never reached.
        assert_eq!(at("<script>, 198.51.100.1").as_deref(), Some("198.51.100.1"));
        // A garbage entry where a proxy's report should be: nothing to its
        // left can be vouched for, so x-real-ip, then the peer.
        assert_eq!(at("1.1.1.1, unknown").as_deref(), Some("198.51.100.9"));
        assert_eq!(at("1.1.1.1, 10.0.0.3, not-an-ip").as_deref(), Some("198.51.100.9"));
        let no_real_ip = client_ip(&p, "10.0.0.2", &[("x-forwarded-for", "1.1.1.1, unknown"), ("x-real-ip", "junk")]);
        assert_eq!(no_real_ip.as_deref(), Some("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_peers_and_hops_are_shown_as_ipv4() {
        let p = policy(&["10.0.0.0/8"]);
        assert_eq!(client_ip(&p, "::ffff:203.0.113.9", &[]).as_deref(), Some("203.0.113.9"));
        let headers = [("x-forwarded-for", "::ffff:198.51.100.1, ::ffff:10.0.0.3")];
        assert_eq!(client_ip(&p, "::ffff:10.0.0.2", &headers).as_deref(), Some("198.51.100.1"));
    }

    #[test]
    fn user_agent_is_kept() {
        let info = client_info(&ClientIpPolicy::default(), "203.0.113.9", &[("user-agent", "grpcurl/1.9")]);
        assert_eq!(info.user_agent.as_deref(), Some("grpcurl/1.9"));
    }
}
