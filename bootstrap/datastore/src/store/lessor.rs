//! Leases: TTLs kept in memory (persisted grants survive a restart with a
//! fresh TTL, as etcd does on leader change) and the keys attached to each.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// etcd's largest lease TTL (MaxLeaseTTL).
pub const MAX_TTL: i64 = 9_000_000_000;
/// etcd rounds smaller TTLs up to its minimum (1.5 election timeouts).
pub const MIN_TTL: i64 = 2;

struct Lease {
    ttl: i64,
    expiry: Instant,
    keys: HashSet<Vec<u8>>,
}

#[derive(Default)]
pub struct Lessor {
    leases: Mutex<HashMap<i64, Lease>>,
}

pub struct LeaseInfo {
    pub granted_ttl: i64,
    pub remaining: i64,
    pub keys: Vec<Vec<u8>>,
}

impl Lessor {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Lease>> {
        // A poisoned map is still consistent: every update is a single insert or remove.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn exists(&self, id: i64) -> bool {
        self.lock().contains_key(&id)
    }

    pub fn grant(&self, id: i64, ttl: i64) {
        let expiry = Instant::now() + Duration::from_secs(ttl.max(0) as u64);
        self.lock().insert(
            id,
            Lease {
                ttl,
                expiry,
                keys: HashSet::new(),
            },
        );
    }

    pub fn remove(&self, id: i64) {
        self.lock().remove(&id);
    }

    /// Refreshes a lease; returns its TTL, or None if it does not exist.
    pub fn keep_alive(&self, id: i64) -> Option<i64> {
        let mut leases = self.lock();
        let lease = leases.get_mut(&id)?;
        lease.expiry = Instant::now() + Duration::from_secs(lease.ttl.max(0) as u64);
        Some(lease.ttl)
    }

    pub fn info(&self, id: i64) -> Option<LeaseInfo> {
        let leases = self.lock();
        let lease = leases.get(&id)?;
        let remaining = lease.expiry.saturating_duration_since(Instant::now());
        let mut keys: Vec<Vec<u8>> = lease.keys.iter().cloned().collect();
        keys.sort();
        Some(LeaseInfo {
            granted_ttl: lease.ttl,
            // etcd reports whole seconds, rounded up while time is left.
            remaining: remaining.as_secs_f64().ceil() as i64,
            keys,
        })
    }

    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.lock().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn attach(&self, id: i64, key: &[u8]) {
        if let Some(lease) = self.lock().get_mut(&id) {
            lease.keys.insert(key.to_vec());
        }
    }

    pub fn detach(&self, id: i64, key: &[u8]) {
        if let Some(lease) = self.lock().get_mut(&id) {
            lease.keys.remove(key);
        }
    }

    pub fn keys(&self, id: i64) -> Vec<Vec<u8>> {
        self.lock()
            .get(&id)
            .map(|l| l.keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn expired(&self) -> Vec<i64> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, l)| l.expiry <= now)
            .map(|(id, _)| *id)
            .collect()
    }
}
