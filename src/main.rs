//! The `blindspot` command line. Errors end here, as anyhow reports with their cause chain.

mod cli;

/// The exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = cli::INTERRUPTED_EXIT;

/// The error and its causes, each said once. Many of our errors (and std's io errors inside
/// them) already include their cause's text in their own message, and also expose it as
/// their `source`; anyhow's `{:#}` would then print it twice (`/proc/x: No such file or
/// directory (os error 2): No such file or directory (os error 2)`). A cause whose text the
/// report already holds is left out.
fn report(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn main() -> std::process::ExitCode {
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", report(&err));
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

#[cfg(test)]
mod tests {
    use super::report;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file (os error 2)");
        let err = anyhow::Error::new(io).context("/proc/x: No such file (os error 2)");
        assert_eq!(report(&err), "/proc/x: No such file (os error 2)");
        let err = anyhow::anyhow!("bad shape").context("loading model m.safetensors");
        assert_eq!(report(&err), "loading model m.safetensors: bad shape");
    }
}
