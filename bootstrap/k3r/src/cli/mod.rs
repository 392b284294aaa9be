//! Command-line flags. Each subcommand parses its flags here and calls into
//! the crate that implements it.

mod agent;
mod check_config;
mod configfile;
mod datastore;
mod host;
mod image;
mod in_cluster;
mod killall;
mod kubectl;
mod node_flags;
mod operators;
mod prepare;
mod runtime_tools;
mod server;
mod svclb;
mod switch;
mod token;
mod upgrade_gate;
mod upgrade_image;
mod upgrade_node;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "k3r",
    version = k3r_version::version(),
    about = "Lightweight Kubernetes, in the spirit of k3s",
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a server: control plane, datastore and a node
    Server(Box<server::ServerArgs>),
    /// Run an agent: join a server's cluster as a node
    Agent(Box<agent::AgentArgs>),
    /// Run kubectl against this server's cluster
    Kubectl(kubectl::KubectlArgs),
    /// Run crictl against this node's containerd
    Crictl(runtime_tools::ToolArgs),
    /// Run ctr against this node's containerd (namespace k8s.io)
    Ctr(runtime_tools::ToolArgs),
    /// Run the etcd-API datastore on its own (for tests and benchmarks)
    Datastore(datastore::DatastoreArgs),
    /// Build OCI image tarballs with k3r's own image tooling
    Image(image::ImageArgs),
    /// Run the in-cluster operators (used by the k3r-operators Deployment)
    Operators(operators::OperatorsArgs),
    /// Stop k3r and everything it started; remove its mounts, interfaces and iptables chains
    Killall(killall::KillallArgs),
    /// Check that this host's kernel and cgroups have what k3r needs
    CheckConfig(check_config::CheckConfigArgs),
    /// Create, list and delete bootstrap tokens for joining agents
    Token(token::TokenArgs),
    /// Forward a LoadBalancer Service's port (what svclb pods run)
    Svclb(svclb::SvclbArgs),
    /// Upgrade k3r on this node from an upgrade image (what a Plan's Job runs)
    UpgradeNode(upgrade_node::UpgradeNodeArgs),
    /// Wait until a Plan is complete (the prepare step of SUC's agent Plans)
    Prepare(prepare::PrepareArgs),
    /// Wait until the Plan controller has cordoned and drained this node for a Job (its gate after prepare)
    UpgradeGate(upgrade_gate::UpgradeGateArgs),
    /// Watch an upgrade's switch and roll it back if it fails (internal)
    #[command(name = "__switch-watch", hide = true)]
    SwitchWatch(switch::WatchArgs),
}

/// Parses the command line, splicing config-file values in before the
/// command-line flags of `server` (k3s semantics: the command line wins).
pub fn parse() -> anyhow::Result<Cli> {
    let mut args: Vec<String> = std::env::args().collect();
    // Run through a link named kubectl, crictl or ctr (as install.sh
    // makes them), k3r is that tool, as k3s is.
    if let Some(tool) = args.first().map(|a| tool_name(a))
        && TOOL_LINKS.contains(&tool.as_str())
    {
        args.insert(1, tool);
        return Ok(Cli::parse_from(args));
    }
    let Some(sub_index) = args
        .iter()
        .skip(1)
        .position(|a| !a.starts_with('-'))
        .map(|i| i + 1)
    else {
        return Ok(Cli::parse_from(args));
    };
    let subcommand = args[sub_index].clone();
    if subcommand != "server" && subcommand != "agent" {
        return Ok(Cli::parse_from(args));
    }
    let cli_args = &args[sub_index + 1..];
    let config = config_path(cli_args);
    let command = Cli::command();
    let flags = |name: &str| -> Vec<String> {
        command
            .find_subcommand(name)
            .map(|c| {
                c.get_arguments()
                    .filter_map(|a| a.get_long().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let known = flags(&subcommand);
    let other = if subcommand == "server" {
        "agent"
    } else {
        "server"
    };
    let files = configfile::config_files(&config)?;
    let from_files = configfile::config_args(&files, &known, &flags(other), cli_args)?;
    let mut spliced: Vec<String> = args[..=sub_index].to_vec();
    spliced.extend(from_files);
    spliced.extend(cli_args.iter().cloned());
    Ok(Cli::parse_from(spliced))
}

/// The names k3r answers to as a tool.
const TOOL_LINKS: &[&str] = &["kubectl", "crictl", "ctr"];

fn tool_name(argv0: &str) -> String {
    std::path::Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn config_path(cli_args: &[String]) -> std::path::PathBuf {
    let mut iter = cli_args.iter();
    while let Some(arg) = iter.next() {
        if let Some(v) = arg.strip_prefix("--config=") {
            return v.into();
        }
        if (arg == "--config" || arg == "-c")
            && let Some(v) = iter.next()
        {
            return v.into();
        }
    }
    std::env::var_os("K3R_CONFIG_FILE")
        .map(Into::into)
        .unwrap_or_else(|| "/etc/k3r/config.yaml".into())
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    trim_start_pages(&cli.command);
    match cli.command {
        Command::Server(args) => server::run(*args),
        Command::Agent(args) => agent::run(*args),
        Command::Kubectl(args) => kubectl::run(args),
        Command::Crictl(args) => runtime_tools::crictl(args),
        Command::Ctr(args) => runtime_tools::ctr(args),
        Command::Datastore(args) => datastore::run(args),
        Command::Image(args) => image::run(args),
        Command::Killall(args) => killall::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Operators(args) => operators::run(args),
        Command::Token(args) => token::run(args),
        Command::Svclb(args) => svclb::run(args),
        Command::UpgradeNode(args) => upgrade_node::run(args),
        Command::Prepare(args) => prepare::run(args),
        Command::UpgradeGate(args) => upgrade_gate::run(args),
        Command::SwitchWatch(args) => switch::watch(args),
    }
}

/// The long-running commands give back their binary's start-up pages once
/// (k3r_starttrim): a server or agent after k3r's delay, the processes it
/// starts in pods (operators, svclb) after the delay their manifest passes.
fn trim_start_pages(command: &Command) {
    match command {
        Command::Server(_) | Command::Agent(_) => {
            k3r_starttrim::later(&k3r_starttrim::configured())
        }
        Command::Operators(_) | Command::Svclb(_) => {
            k3r_starttrim::later(&std::env::var(k3r_starttrim::ENV).unwrap_or_default())
        }
        _ => {}
    }
}

pub async fn wait_for_signal() {
    wait_for_stop().await;
}

/// SIGTERM or SIGINT: stop ([`Shutdown::Stop`]); SIGUSR2: stop k3r's own
/// processes and run again in place, keeping the pods
/// ([`Shutdown::Switch`], what an upgrade asks for).
pub async fn wait_for_stop() -> k3r_node::Shutdown {
    use k3r_node::Shutdown;
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut usr2)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined2()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => Shutdown::Stop,
        _ = int.recv() => Shutdown::Stop,
        _ = usr2.recv() => Shutdown::Switch,
    }
}
