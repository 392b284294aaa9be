//! k3r's datastore: an etcd v3 API server that keeps its data in SQLite
//! (default), PostgreSQL or MySQL/MariaDB.
//!
//! Writes go through one writer that commits groups of requests durably and
//! assigns gapless revisions; watchers are fed from memory right after each
//! commit and catch up from the database when they fall behind.

pub mod backend;
pub mod error;
pub mod server;
pub mod service;
pub mod store;

pub use backend::Endpoint;
pub use error::{Error, Result};
pub use server::{Datastore, DatastoreConfig, Listen, TlsFiles, metrics_text};
pub use store::{Store, StoreConfig};
