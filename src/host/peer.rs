//! Who may send invocation payloads (`POST /<function>`): the Functions host, which reaches the handler
//! over loopback. A payload carries no caller credentials (the host checked the function key, or nobody
//! did for a timer), so anyone else who could reach the port could start a revoke run or replay HTTP
//! requests through the bridge. Requests from any other address are refused unless a setting says the
//! network already keeps strangers out.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Lets invocation payloads in from any address (off by default).
pub const ALLOW_REMOTE_INVOCATIONS: &str = "UC_ACCESS_ALLOW_REMOTE_INVOCATIONS";

/// Whether `ip` is a loopback address. An IPv4 address mapped into IPv6 (`::ffff:127.0.0.1`, what a
/// dual-stack listener reports for an IPv4 peer) counts as the IPv4 address it carries.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Which peers may send invocation payloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InvocationPeers {
    /// Only loopback peers: the Functions host on the same machine.
    #[default]
    LoopbackOnly,
    /// Any peer (`UC_ACCESS_ALLOW_REMOTE_INVOCATIONS=true`): for a network that only the host can cross.
    Anyone,
}

impl InvocationPeers {
    /// Whether a connection from `peer` may send an invocation payload. An unknown peer address (a
    /// router driven without connection info) is refused: who is calling cannot be established.
    pub fn admits(self, peer: Option<SocketAddr>) -> bool {
        match self {
            InvocationPeers::Anyone => true,
            InvocationPeers::LoopbackOnly => peer.is_some_and(|p| is_loopback(p.ip())),
        }
    }
}

/// The answer to an invocation payload from a peer that may not send one.
pub fn refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invocation_not_from_host",
        format!(
            "invocation payloads (POST /<function>) are accepted only from the Functions host over loopback; \
             call /api/<function> instead, or set {ALLOW_REMOTE_INVOCATIONS}=true if only the host can reach this address"
        ),
    )
}

/// Middleware for the invocation routes: lets the request through when [`InvocationPeers::admits`] the
/// connection's peer, answers [`refused`] otherwise (before the body is read).
pub async fn host_only(
    State(peers): State<InvocationPeers>,
    request: Request,
    next: Next,
) -> Response {
    // Through the extractor, so a router served with connection info and one driven in tests with
    // `MockConnectInfo` read the peer the same way.
    let (mut parts, body) = request.into_parts();
    let peer = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, &())
        .await
        .ok()
        .map(|ConnectInfo(addr)| addr);
    if peers.admits(peer) {
        next.run(Request::from_parts(parts, body)).await
    } else {
        refused()
            .with_detail(format!(
                "peer {}",
                peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
            ))
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    #[test]
    fn loopback_peers_are_admitted_and_every_other_address_is_refused_by_default() {
        let peers = InvocationPeers::default();
        for ip in [
            "127.0.0.1",
            "127.0.0.2",
            "127.255.255.254",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(peers.admits(at(ip)), "{ip}");
        }
        for ip in [
            "10.0.0.4",
            "192.0.2.2",
            "169.254.130.1",
            "0.0.0.0",
            "::",
            "fd00::2",
            "::ffff:10.0.0.4",
            "::127.0.0.1",
        ] {
            assert!(!peers.admits(at(ip)), "{ip}");
        }
        assert!(!peers.admits(None), "an unknown peer is refused");
    }

    #[test]
    fn with_remote_invocations_allowed_every_peer_is_admitted() {
        for peer in [at("10.0.0.4"), at("fd00::2"), None] {
            assert!(InvocationPeers::Anyone.admits(peer), "{peer:?}");
        }
    }

    #[test]
    fn the_refusal_is_a_403_naming_the_setting_that_would_allow_it() {
        let e = refused();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert_eq!(e.code, "invocation_not_from_host");
        assert!(
            e.message.contains(ALLOW_REMOTE_INVOCATIONS),
            "{}",
            e.message
        );
    }
}
