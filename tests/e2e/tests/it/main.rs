//! End-to-end tests on our own harness (libtest-mimic): the tests that need
//! no cluster, then one shared cluster — booted once, on first use — with
//! each area of it a named test that reports on its own, runs in this
//! order, and can be run alone (`cargo test -p k3r-e2e --test it -- helm`):
//! an area prepares what it needs if an earlier one did not. A failure in
//! one area does not hide the others' results. One cluster per host at a
//! time (the node's ports and /run/k3r are per host), so one thread.

mod addons;
mod agents;
mod bench_netpol;
mod bench_servicelb;
mod check_config;
mod cluster;
mod conformance;
mod helm_chart;
mod helm_features;
mod helm_release;
mod install;
mod join;
mod metrics;
mod netpol;
mod operators;
mod plans;
mod process;
mod runtime;
mod server_bad_input;
mod servicelb;
mod shared;
mod single_node;
mod sockets;
mod switch;
mod traefik;
mod upgrade;

use libtest_mimic::{Arguments, Failed, Trial};

fn standalone(name: &str, test: fn()) -> Trial {
    Trial::test(name, move || {
        test();
        Ok::<(), Failed>(())
    })
}

fn area(name: &str, test: fn(&mut shared::Shared)) -> Trial {
    Trial::test(name, move || shared::with_cluster(test))
}

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        standalone(
            "server_bad_input::bad_configuration_is_refused_with_one_clear_line",
            server_bad_input::bad_configuration_is_refused_with_one_clear_line,
        ),
        standalone(
            "server_bad_input::bad_agent_flags_are_refused_with_one_clear_line",
            server_bad_input::bad_agent_flags_are_refused_with_one_clear_line,
        ),
        standalone(
            "server_bad_input::a_damaged_runtime_is_refused_with_one_clear_line",
            server_bad_input::a_damaged_runtime_is_refused_with_one_clear_line,
        ),
        standalone(
            "install::install_and_uninstall_round_trip",
            install::install_and_uninstall_round_trip,
        ),
        standalone(
            "runtime::boots_with_the_host_runtime_hidden",
            runtime::boots_with_the_host_runtime_hidden,
        ),
        standalone("sockets::detector_sees_nagle", sockets::detector_sees_nagle),
        standalone(
            "check_config::this_host_passes_and_a_bare_kernel_is_named",
            check_config::this_host_passes_and_a_bare_kernel_is_named,
        ),
        area("cluster::single_node", single_node::api_and_workloads),
        area("cluster::coredns", addons::coredns),
        area("cluster::runtime::bundled", runtime::bundled),
        area(
            "cluster::runtime::registry_mirror",
            runtime::registry_mirror,
        ),
        area("cluster::addons", addons::addons),
        area("cluster::traefik", traefik::traefik),
        area(
            "cluster::operators::hook_blocks_nothing",
            operators::hook_blocks_nothing,
        ),
        area("cluster::helm::real_helm_reads_our_releases", |s| {
            helm_release::real_helm_reads_our_releases(&s.cluster)
        }),
        area("cluster::helm::charts", |s| {
            helm_chart::helm_charts(&s.cluster)
        }),
        area("cluster::helm::features", |s| {
            helm_features::helm_features(&s.cluster)
        }),
        area("cluster::join_endpoints", |s| {
            join::join_endpoints(&s.cluster)
        }),
        area("cluster::bulk_configmaps", |s| {
            single_node::bulk_configmaps(&s.cluster)
        }),
        area("cluster::supervisor_metrics", |s| {
            metrics::supervisor_metrics(&s.cluster)
        }),
        area("cluster::start_pages_trimmed", |s| {
            single_node::start_pages_trimmed(&s.cluster)
        }),
        // Before the agents area, which restarts the server (and with it
        // the slow chart's hook pod and the operators pod).
        area(
            "cluster::operators::slow_hook_completes",
            operators::slow_hook_completes,
        ),
        area("cluster::agents", agents::agents),
        area("cluster::conformance", conformance::slice),
        area("cluster::servicelb", servicelb::servicelb),
        area("cluster::netpol", netpol::netpol),
        area("cluster::upgrade::plans", plans::plans),
        area("cluster::upgrade::switch", switch::switch_in_place),
        area("cluster::upgrade::k3r", upgrade::upgrade),
        // Benchmarks, not tests: scripts/bench-servicelb and
        // scripts/bench-netpol, --cluster.
        area("bench::servicelb", bench_servicelb::servicelb).with_ignored_flag(true),
        area("bench::netpol", bench_netpol::netpol).with_ignored_flag(true),
        // The whole conformance suite on three nodes: scripts/conformance
        // --multi-node.
        area("conformance::multi_node", conformance::multi_node).with_ignored_flag(true),
        area("cluster::agents_leave", agents::leave),
        area("cluster::restart", single_node::restart),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    shared::teardown();
    conclusion.exit();
}
