//! Command-line flags. Each subcommand parses its flags here and calls into
//! the crate that implements it.

mod configfile;
mod datastore;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "k3r", version, about = "Lightweight Kubernetes, in the spirit of k3s")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the etcd-API datastore on its own (for tests and benchmarks)
    Datastore(datastore::DatastoreArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Datastore(args) => datastore::run(args),
    }
}
