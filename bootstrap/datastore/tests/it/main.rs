//! Integration tests of the datastore against real peers: real etcd as a
//! differential oracle, etcdctl, and PostgreSQL/MariaDB servers started by
//! `scripts/test-services` (their DSNs arrive in K3R_TEST_POSTGRES and
//! K3R_TEST_MYSQL).

mod bad_input;
mod bounded;
mod concurrency;
mod differential;
mod etcdctl;
mod harness;
mod large_revisions;
mod missing_database;
mod shared_database;
mod tls_and_metrics;
mod watch_fanout;
mod watch_progress;
