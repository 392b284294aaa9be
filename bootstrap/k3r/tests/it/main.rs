//! Integration tests of the k3r binary as a process.

mod datastore_crash;
