//! The k3r binary. Flags live in `cli`; behaviour lives in the library
//! crates, as in k3s's split of pkg/cli/cmds from pkg/*.

mod cli;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("K3R_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: pod logs and log files stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli::parse().and_then(cli::run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line naming the problem.
            eprintln!("k3r: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
