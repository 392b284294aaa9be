//! End-to-end tests. They boot real clusters (root, containerd, iptables),
//! one at a time: the node's ports and /run/k3r are per host.

mod addons;
mod agents;
mod cluster;
mod helm_chart;
mod helm_features;
mod helm_release;
mod join;
mod process;
mod server_bad_input;
mod single_node;
