//! Where the handler listens and how much it accepts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{Env, SettingsError};

/// The port when the Functions host did not set one (a local run): the port `func start` uses, so local
/// URLs look like the deployed ones (`http://127.0.0.1:7071/api/purview-callback`).
pub const DEFAULT_PORT: u16 = 7071;
/// Largest request body accepted (a callback body is well under 4 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub addr: SocketAddr,
    pub max_body_bytes: usize,
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
        let ip: IpAddr = env.parse_or("UC_ACCESS_BIND_ADDRESS", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let max_body_bytes = env.parse_or("UC_ACCESS_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?;
        if !(1024..=1024 * 1024).contains(&max_body_bytes) {
            return Err(SettingsError::new(
                "UC_ACCESS_MAX_BODY_BYTES",
                "must be between 1024 and 1048576",
            ));
        }
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            max_body_bytes,
        })
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
