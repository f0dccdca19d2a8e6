//! Kafka's connection limits: `max.connections` for the whole broker (the acceptor waits for
//! a free slot, as Kafka's does, leaving new connections in the listen backlog),
//! `max.connections.per.ip` with `max.connections.per.ip.overrides` (a connection past its
//! address's limit is closed at once), so one client cannot take every connection slot or
//! file descriptor from the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct ConnectionQuotas {
    slots: Arc<Semaphore>,
    max_per_ip: usize,
    overrides: HashMap<IpAddr, usize>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its slots.
pub struct ConnectionSlot {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut per_ip = self.quotas.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl ConnectionQuotas {
    pub fn new(max_connections: usize, max_per_ip: usize, overrides: HashMap<IpAddr, usize>) -> Arc<Self> {
        Arc::new(ConnectionQuotas {
            slots: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            max_per_ip,
            overrides,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for a broker-wide slot (before accepting).
    pub async fn wait_for_slot(&self) -> OwnedSemaphorePermit {
        self.slots.clone().acquire_owned().await.expect("the semaphore is never closed")
    }

    /// Admits a connection from `ip` holding `permit`, or `None` when that address has
    /// its `max.connections.per.ip` already.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, permit: OwnedSemaphorePermit) -> Option<ConnectionSlot> {
        let limit = self.overrides.get(&ip).copied().unwrap_or(self.max_per_ip);
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(ConnectionSlot { quotas: self.clone(), ip, _permit: permit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::listener::parse_overrides;

    #[tokio::test]
    async fn per_address_limits_and_overrides() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "::1".parse().unwrap();
        let q = ConnectionQuotas::new(100, 2, parse_overrides("::1:3").unwrap());
        let a = q.admit(local, q.wait_for_slot().await).unwrap();
        let _b = q.admit(local, q.wait_for_slot().await).unwrap();
        assert!(q.admit(local, q.wait_for_slot().await).is_none(), "third from one address");
        let _o: Vec<_> = (0..3).map(|_| q.admit(other, q.slots.clone().try_acquire_owned().unwrap()).unwrap()).collect();
        drop(a);
        assert!(q.admit(local, q.wait_for_slot().await).is_some(), "a freed slot is reused");
        assert!(parse_overrides("host:3").is_err() && parse_overrides("1.2.3.4").is_err());
    }

    #[tokio::test]
    async fn the_broker_wide_limit_makes_the_acceptor_wait() {
        let q = ConnectionQuotas::new(1, 10, HashMap::new());
        let first = q.admit("127.0.0.1".parse().unwrap(), q.wait_for_slot().await).unwrap();
        assert!(q.slots.clone().try_acquire_owned().is_err());
        drop(first);
        assert!(q.slots.clone().try_acquire_owned().is_ok());
    }
}
