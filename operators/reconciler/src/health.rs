//! What the probes report about the controllers: live while every
//! controller's loop runs (a loop that ended is dead; a reconcile taking
//! long, or failing, is not), ready once every controller's caches synced.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Syncing,
    Synced,
    Stopped(String),
}

#[derive(Clone, Default)]
pub struct Health {
    controllers: Arc<Mutex<BTreeMap<&'static str, State>>>,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, State>> {
        self.controllers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn starting(&self, controller: &'static str) {
        self.lock().insert(controller, State::Syncing);
    }

    pub fn synced(&self, controller: &'static str) {
        self.lock().insert(controller, State::Synced);
    }

    pub fn stopped(&self, controller: &'static str, why: &str) {
        self.lock()
            .insert(controller, State::Stopped(why.to_string()));
    }

    /// Liveness: no controller's loop has ended.
    pub fn live(&self) -> Result<(), String> {
        let stopped: Vec<String> = self
            .lock()
            .iter()
            .filter_map(|(name, state)| match state {
                State::Stopped(why) => Some(format!("{name}: {why}")),
                _ => None,
            })
            .collect();
        if stopped.is_empty() {
            Ok(())
        } else {
            Err(format!("controller loop ended: {}", stopped.join("; ")))
        }
    }

    /// Readiness: every controller's caches hold the whole initial list.
    pub fn ready(&self) -> Result<(), String> {
        let syncing: Vec<&str> = self
            .lock()
            .iter()
            .filter(|(_, state)| **state != State::Synced)
            .map(|(name, _)| *name)
            .collect();
        if syncing.is_empty() {
            Ok(())
        } else {
            Err(format!("caches not synced: {}", syncing.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_after_sync_dead_only_when_a_loop_ends() {
        let health = Health::default();
        health.starting("helm");
        health.starting("deploy");
        assert!(health.live().is_ok());
        let err = health.ready().expect_err("syncing");
        assert!(err.contains("deploy") && err.contains("helm"), "{err}");
        health.synced("helm");
        health.synced("deploy");
        assert!(health.ready().is_ok());
        health.stopped("helm", "watch stream ended");
        let err = health.live().expect_err("stopped");
        assert!(err.contains("helm: watch stream ended"), "{err}");
    }
}
