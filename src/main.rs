//! The `blindspot` command line. Errors end here, as anyhow reports with their cause chain.

mod cli;

/// The exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = cli::INTERRUPTED_EXIT;

fn main() -> std::process::ExitCode {
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let interrupted = err.chain().any(|cause| {
                matches!(
                    cause.downcast_ref::<blindspot::run::RunError>(),
                    Some(blindspot::run::RunError::Interrupted { .. })
                )
            });
            if interrupted {
                std::process::ExitCode::from(INTERRUPTED)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
