//! Where the handler listens, how much it accepts, and who may send it invocation payloads.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{Env, SettingsError};
use crate::host::peer::{ALLOW_REMOTE_INVOCATIONS, InvocationPeers, is_loopback};

/// Where the handler listens.
pub const BIND_ADDRESS: &str = "UC_ACCESS_BIND_ADDRESS";

/// The port when the Functions host did not set one (a local run): the port `func start` uses, so local
/// URLs look like the deployed ones (`http://127.0.0.1:7071/api/purview-callback`).
pub const DEFAULT_PORT: u16 = 7071;
/// Largest request body accepted (a callback body is well under 4 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub addr: SocketAddr,
    pub max_body_bytes: usize,
    /// Who may send invocation payloads (`POST /<function>`): loopback peers unless
    /// `UC_ACCESS_ALLOW_REMOTE_INVOCATIONS` is set.
    pub invocation_peers: InvocationPeers,
}

/// What the listener exposes beyond the Functions host (the start-up warning and the doctor's check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Bound to a loopback address: only processes on this machine (the host) can connect.
    Loopback,
    /// Bound beyond loopback; invocation payloads from other addresses are refused, `/api/<function>`
    /// authenticates every caller itself, but callers who reach the port directly skip the host's
    /// function key.
    Guarded,
    /// Bound beyond loopback with `UC_ACCESS_ALLOW_REMOTE_INVOCATIONS`: anyone who reaches the port can
    /// start a revoke run or send requests through the invocation bridge.
    Open,
}

impl ServerSettings {
    /// `FUNCTIONS_CUSTOMHANDLER_PORT` (legacy alias `FUNCTIONS_HTTPWORKER_PORT`), `UC_ACCESS_BIND_ADDRESS`
    /// (default 127.0.0.1: the host talks to us over loopback), `UC_ACCESS_MAX_BODY_BYTES`.
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let port =
            match env.get_first(&["FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT"]) {
                None => DEFAULT_PORT,
                Some((key, raw)) => raw
                    .parse()
                    .map_err(|_| SettingsError::new(key, format!("{raw:?} is not a TCP port")))?,
            };
        let ip: IpAddr = env.parse_or(BIND_ADDRESS, IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let max_body_bytes = env.parse_or("UC_ACCESS_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?;
        if !(1024..=1024 * 1024).contains(&max_body_bytes) {
            return Err(SettingsError::new(
                "UC_ACCESS_MAX_BODY_BYTES",
                "must be between 1024 and 1048576",
            ));
        }
        let invocation_peers = if env.flag(ALLOW_REMOTE_INVOCATIONS, false)? {
            InvocationPeers::Anyone
        } else {
            InvocationPeers::LoopbackOnly
        };
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            max_body_bytes,
            invocation_peers,
        })
    }

    /// What listening on [`ServerSettings::addr`] exposes.
    pub fn exposure(&self) -> Exposure {
        match (is_loopback(self.addr.ip()), self.invocation_peers) {
            (true, _) => Exposure::Loopback,
            (false, InvocationPeers::LoopbackOnly) => Exposure::Guarded,
            (false, InvocationPeers::Anyone) => Exposure::Open,
        }
    }

    /// What to warn about at start (and what the doctor reports), when the listener is reachable beyond
    /// loopback; `None` on loopback.
    pub fn exposure_warning(&self) -> Option<String> {
        let addr = self.addr;
        match self.exposure() {
            Exposure::Loopback => None,
            Exposure::Guarded => Some(format!(
                "listening on {addr}, beyond loopback ({BIND_ADDRESS}): invocation payloads (POST /<function>) from other \
                 addresses are refused with 403, and /api/<function> authenticates every caller, but a caller who \
                 reaches this port directly skips the Functions host's key"
            )),
            Exposure::Open => Some(format!(
                "listening on {addr}, beyond loopback ({BIND_ADDRESS}), with {ALLOW_REMOTE_INVOCATIONS}=true: anyone who \
                 reaches this port can start a revoke-expired run or send requests through POST /<function>, which \
                 carry no caller authentication"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_port_wins_and_the_legacy_alias_is_honoured() {
        let s =
            ServerSettings::from_env(&Env::from_pairs([("FUNCTIONS_CUSTOMHANDLER_PORT", "4001")]))
                .unwrap();
        assert_eq!(s.addr, "127.0.0.1:4001".parse().unwrap());
        let s = ServerSettings::from_env(&Env::from_pairs([("FUNCTIONS_HTTPWORKER_PORT", "4002")]))
            .unwrap();
        assert_eq!(s.addr.port(), 4002);
        let s = ServerSettings::from_env(&Env::default()).unwrap();
        assert_eq!(s.addr.port(), DEFAULT_PORT);
    }

    #[test]
    fn invocation_payloads_are_for_loopback_peers_unless_remote_ones_are_allowed() {
        let s = ServerSettings::from_env(&Env::default()).unwrap();
        assert_eq!(s.invocation_peers, InvocationPeers::LoopbackOnly);
        assert_eq!(s.exposure(), Exposure::Loopback);
        assert_eq!(s.exposure_warning(), None);

        let anywhere = Env::from_pairs([(BIND_ADDRESS, "0.0.0.0")]);
        let s = ServerSettings::from_env(&anywhere).unwrap();
        assert_eq!(s.exposure(), Exposure::Guarded);
        let warning = s.exposure_warning().unwrap();
        assert!(
            warning.contains("0.0.0.0:7071") && warning.contains("refused with 403"),
            "{warning}"
        );

        let open = anywhere.with(ALLOW_REMOTE_INVOCATIONS, "true");
        let s = ServerSettings::from_env(&open).unwrap();
        assert_eq!(s.invocation_peers, InvocationPeers::Anyone);
        assert_eq!(s.exposure(), Exposure::Open);
        assert!(
            s.exposure_warning().unwrap().contains("anyone who reaches"),
            "{s:?}"
        );

        // Allowing remote peers on a loopback listener exposes nothing more.
        let s = ServerSettings::from_env(&Env::from_pairs([
            (BIND_ADDRESS, "::1"),
            (ALLOW_REMOTE_INVOCATIONS, "yes"),
        ]))
        .unwrap();
        assert_eq!(s.exposure(), Exposure::Loopback);

        let err = ServerSettings::from_env(&Env::from_pairs([(ALLOW_REMOTE_INVOCATIONS, "maybe")]))
            .unwrap_err();
        assert_eq!(err.key, ALLOW_REMOTE_INVOCATIONS);
    }

    #[test]
    fn a_bad_port_names_the_key() {
        let err =
            ServerSettings::from_env(&Env::from_pairs([("FUNCTIONS_CUSTOMHANDLER_PORT", "http")]))
                .unwrap_err();
        assert_eq!(err.key, "FUNCTIONS_CUSTOMHANDLER_PORT");
        let err = ServerSettings::from_env(&Env::from_pairs([("UC_ACCESS_MAX_BODY_BYTES", "10")]))
            .unwrap_err();
        assert_eq!(err.key, "UC_ACCESS_MAX_BODY_BYTES");
    }
}
