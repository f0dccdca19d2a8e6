//! `listeners` and `advertised.listeners`: where the broker binds and what it tells clients.
//!
//! Bind addresses are parsed as IP literals (a static binary has no NSS for name lookups);
//! advertised hosts are plain strings handed to clients as they are.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub bind: SocketAddr,
    pub advertised_host: String,
    /// 0 means "the port actually bound" (an ephemeral listener).
    pub advertised_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSet(pub Vec<Listener>);

impl Default for ListenerSet {
    fn default() -> Self {
        ListenerSet::parse("PLAINTEXT://0.0.0.0:9092", Some("PLAINTEXT://localhost:9092")).expect("valid default")
    }
}

fn split(entry: &str) -> Result<(String, String, u16), String> {
    let entry = entry.trim();
    let (name, rest) = entry
        .split_once("://")
        .ok_or_else(|| format!("{entry:?} is not of the form NAME://host:port"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{entry:?} has no port"))?;
    let port: u16 = port.parse().map_err(|_| format!("{entry:?} has an invalid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok((name.to_ascii_uppercase(), host, port))
}

fn bind_ip(host: &str) -> Result<IpAddr, String> {
    match host {
        "" => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        h => h
            .parse()
            .map_err(|_| format!("listener host {h:?} must be an IP address (or empty for all interfaces)")),
    }
}

impl ListenerSet {
    pub fn parse(listeners: &str, advertised: Option<&str>) -> Result<Self, String> {
        let mut out = Vec::new();
        for entry in listeners.split(',').filter(|e| !e.trim().is_empty()) {
            let (name, host, port) = split(entry)?;
            let ip = bind_ip(&host)?;
            let default_host = if ip.is_unspecified() { "localhost".to_string() } else { host.clone() };
            out.push(Listener { name, bind: SocketAddr::new(ip, port), advertised_host: default_host, advertised_port: port });
        }
        if out.is_empty() {
            return Err("no listener configured".into());
        }
        if let Some(adv) = advertised {
            for entry in adv.split(',').filter(|e| !e.trim().is_empty()) {
                let (name, host, port) = split(entry)?;
                let l = out
                    .iter_mut()
                    .find(|l| l.name == name)
                    .ok_or_else(|| format!("advertised listener {name} has no matching entry in listeners"))?;
                l.advertised_host = host;
                l.advertised_port = port;
            }
        }
        Ok(ListenerSet(out))
    }
}

/// Kafka's security protocols. Only PLAINTEXT is served until TLS and SASL are built.
const PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// Resolves every listener's security protocol as Kafka does (an explicit
/// `listener.security.protocol.map` replaces the default one, which maps each protocol name
/// to itself) and refuses any listener that is not PLAINTEXT: a broker configured for TLS
/// or SASL must not quietly serve plaintext instead.
pub fn check_security_protocols(listeners: &ListenerSet, map: Option<&str>) -> Result<(), String> {
    let mut mapped: Vec<(String, String)> = Vec::new();
    match map {
        Some(map) => {
            for entry in map.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let (name, proto) = entry
                    .split_once(':')
                    .ok_or_else(|| format!("listener.security.protocol.map entry {entry:?} is not of the form NAME:PROTOCOL"))?;
                let proto = proto.trim().to_ascii_uppercase();
                if !PROTOCOLS.contains(&proto.as_str()) {
                    return Err(format!("listener.security.protocol.map maps {name} to unknown security protocol {proto}"));
                }
                mapped.push((name.trim().to_ascii_uppercase(), proto));
            }
        }
        None => mapped.extend(PROTOCOLS.iter().map(|p| (p.to_string(), p.to_string()))),
    }
    for l in &listeners.0 {
        let proto = mapped.iter().find(|(n, _)| *n == l.name).map(|(_, p)| p.as_str()).ok_or_else(|| {
            format!(
                "listener {} has no security protocol; add {}:PLAINTEXT to listener.security.protocol.map",
                l.name, l.name
            )
        })?;
        if proto != "PLAINTEXT" {
            return Err(format!(
                "listener {} ({}) uses security protocol {proto}, which this broker does not serve yet (TLS and SASL \
                 are not built); refusing to start rather than serve it as plaintext. Use a PLAINTEXT listener",
                l.name, l.bind
            ));
        }
    }
    Ok(())
}

/// Parses `max.connections.per.ip.overrides`: `address:count` pairs, comma-separated.
pub fn parse_overrides(text: &str) -> Result<std::collections::HashMap<IpAddr, usize>, String> {
    let mut out = std::collections::HashMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry.rsplit_once(':').ok_or_else(|| format!("{entry:?} is not of the form address:count"))?;
        let ip: IpAddr = host.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| format!("{host:?} is not an IP address"))?;
        let count: usize = count.parse().map_err(|_| format!("{count:?} is not a connection count"))?;
        out.insert(ip, count);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_advertised_override() {
        let s = ListenerSet::parse("PLAINTEXT://0.0.0.0:9092", None).unwrap();
        assert_eq!(s.0[0].advertised_host, "localhost");
        let s = ListenerSet::parse("PLAINTEXT://127.0.0.1:0", Some("PLAINTEXT://broker:19092")).unwrap();
        assert_eq!((s.0[0].advertised_host.as_str(), s.0[0].advertised_port), ("broker", 19092));
        assert!(ListenerSet::parse("PLAINTEXT://kafka.example:9092", None).is_err());
        assert!(ListenerSet::parse("PLAINTEXT://0.0.0.0:9092", Some("OTHER://h:1")).is_err());
    }

    #[test]
    fn listeners_that_are_not_plaintext_are_refused() {
        let check = |listeners: &str, map: Option<&str>| check_security_protocols(&ListenerSet::parse(listeners, None).unwrap(), map);
        assert!(check("PLAINTEXT://0.0.0.0:9092", None).is_ok());
        for l in ["SSL://0.0.0.0:9093", "SASL_PLAINTEXT://0.0.0.0:9094", "SASL_SSL://0.0.0.0:9095"] {
            let err = check(&format!("PLAINTEXT://0.0.0.0:9092,{l}"), None).unwrap_err();
            let name = l.split(':').next().unwrap();
            assert!(err.contains(&format!("listener {name} ")) && err.contains("refusing to start"), "{err}");
        }
        // A custom name takes its protocol from the map only.
        assert!(check("INTERNAL://0.0.0.0:9092", Some("INTERNAL:PLAINTEXT")).is_ok());
        assert!(check("INTERNAL://0.0.0.0:9092", Some("INTERNAL:SASL_SSL")).unwrap_err().contains("SASL_SSL"));
        assert!(check("INTERNAL://0.0.0.0:9092", None).unwrap_err().contains("no security protocol"));
        assert!(check("EXTERNAL://0.0.0.0:9092", Some("EXTERNAL:TLS")).unwrap_err().contains("unknown security protocol"));
        // An explicit map replaces the default one, as in Kafka.
        assert!(check("SSL://0.0.0.0:9093", Some("SSL:PLAINTEXT")).is_ok());
    }
}
