//! Which address a request comes from: the TCP peer, or, when the peer is a
//! trusted proxy (an API gateway, a load balancer), the address that proxy
//! reports in `x-forwarded-for` / `x-real-ip`.
//!
//! Headers are attacker-controlled unless a proxy we trust wrote them, so
//! they are read only when the peer is trusted, and `x-forwarded-for` is
//! walked from the right (the entries proxies appended) past trusted hops
//! only: the first untrusted address is the client. Anything left of it was
//! written by that client and is never believed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use gatehouse_domain::ClientInfo;
use tonic::codegen::http::HeaderMap;

/// A network in CIDR notation: `10.0.0.0/8`, `2001:db8::/32`; a bare
/// address is a single host (`/32` for IPv4, `/128` for IPv6). Host bits
/// below the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a trusted-proxy entry is not a network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    #[error("`{0}` is not an IP address (expected e.g. `10.0.0.0/8`, `::1/128` or `192.0.2.7`)")]
    Address(String),
    #[error("`{0}` is not a prefix length (expected a number after `/`, e.g. `/24`)")]
    Prefix(String),
    #[error("prefix length /{prefix_len} is too long for {addr} (at most /{max})")]
    PrefixTooLong { addr: IpAddr, prefix_len: u8, max: u8 },
}

impl IpNet {
    /// The network of `addr` with a `prefix_len`-bit prefix.
    ///
    /// # Errors
    /// [`IpNetError::PrefixTooLong`] past 32 (IPv4) or 128 (IPv6) bits.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, IpNetError> {
        let max = max_prefix(addr);
        if prefix_len > max {
            return Err(IpNetError::PrefixTooLong { addr, prefix_len, max });
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix_len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix_len))),
        };
        Ok(Self { addr, prefix_len })
    }

    /// The single-host network of `addr` (`/32` or `/128`).
    #[must_use]
    pub fn host(addr: IpAddr) -> Self {
        Self { addr, prefix_len: max_prefix(addr) }
    }

    /// The network address (host bits cleared).
    #[must_use]
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    #[must_use]
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`) counts as its IPv4 address.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix_len);
                u32::from(ip) & mask == u32::from(net) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix_len);
                u128::from(ip) & mask == u128::from(net) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| IpNetError::Address(addr.to_owned()))?;
        match prefix {
            None => Ok(Self::host(addr)),
            Some(p) => {
                // `u8::from_str` takes a leading `+`; a prefix length is digits only.
                let prefix_len = p
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| p.parse::<u8>().ok())
                    .flatten()
                    .ok_or_else(|| IpNetError::Prefix(p.to_owned()))?;
                Self::new(addr, prefix_len)
            }
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

const fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask32(prefix_len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix_len.min(32))).unwrap_or(0)
}

fn mask128(prefix_len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix_len.min(128))).unwrap_or(0)
}

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
        self.trusted.iter().any(|net| net.contains(ip))
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
    fn networks_parse_from_cidr_or_a_bare_address() {
        assert_eq!(net("10.0.0.0/8"), IpNet::new(ip("10.0.0.0"), 8).unwrap());
        assert_eq!(net("192.0.2.7"), IpNet::new(ip("192.0.2.7"), 32).unwrap());
        assert_eq!(net("::1").prefix_len(), 128);
        assert_eq!(net(" ::1/128 ").to_string(), "::1/128");
        assert_eq!(net("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("2001:db8:ffff::1/32").to_string(), "2001:db8::/32");
        assert_eq!(net("0.0.0.0/0").addr(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(net("::/0").addr(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }

    #[test]
    fn bad_networks_are_refused_with_a_clear_error() {
        assert_eq!("gateway".parse::<IpNet>(), Err(IpNetError::Address("gateway".into())));
        assert_eq!("10.0.0/8".parse::<IpNet>(), Err(IpNetError::Address("10.0.0".into())));
        assert_eq!("10.0.0.0/".parse::<IpNet>(), Err(IpNetError::Prefix(String::new())));
        assert_eq!("10.0.0.0/+8".parse::<IpNet>(), Err(IpNetError::Prefix("+8".into())));
        assert_eq!("10.0.0.0/8/8".parse::<IpNet>(), Err(IpNetError::Prefix("8/8".into())));
        let err = "10.0.0.0/33".parse::<IpNet>().unwrap_err();
        assert_eq!(err, IpNetError::PrefixTooLong { addr: ip("10.0.0.0"), prefix_len: 33, max: 32 });
        assert!(err.to_string().contains("at most /32"), "{err}");
        assert!(matches!("::/129".parse::<IpNet>(), Err(IpNetError::PrefixTooLong { max: 128, .. })));
        assert!("10.0.0.0/999".parse::<IpNet>().is_err());
    }

    #[test]
    fn ipv4_networks_match_by_prefix() {
        let n = net("10.0.0.0/8");
        assert!(n.contains(ip("10.0.0.0")) && n.contains(ip("10.255.255.255")));
        assert!(!n.contains(ip("11.0.0.0")) && !n.contains(ip("9.255.255.255")));
        let n = net("172.16.0.0/12");
        assert!(n.contains(ip("172.31.255.1")) && !n.contains(ip("172.32.0.1")));
        let host = net("192.0.2.7");
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!n.contains(ip("::a00:1")), "an IPv6 address is not in an IPv4 network");
    }

    #[test]
    fn ipv6_networks_match_by_prefix() {
        let n = net("2001:db8::/32");
        assert!(n.contains(ip("2001:db8::1")) && n.contains(ip("2001:db8:ffff:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        let loopback = net("::1/128");
        assert!(loopback.contains(ip("::1")) && !loopback.contains(ip("::2")));
        let n = net("fd00::/8");
        assert!(n.contains(ip("fdff::1")) && !n.contains(ip("fe00::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        assert!(!net("::/0").contains(ip("10.0.0.1")), "an IPv4 address is not in an IPv6 network");
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_networks() {
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(!net("10.0.0.0/8").contains(ip("::ffff:11.1.2.3")));
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
        let p = policy(&["10.0.0.0/8", "::1"]);
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
