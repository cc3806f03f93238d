//! A request to stop, made by Ctrl-C (SIGINT) at the command line and honoured by long jobs
//! between two steps, so that what was finished is on disk and `--resume` continues it.
//!
//! A leaf module: the CLI installs the signal handler (the binary edge) and calls [`request`];
//! the evaluation loops ask [`requested`] after every step.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks running jobs to stop after their current step.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// `Break` once a stop was asked for: what a job's progress callback returns to stop after
/// the current step.
pub fn stop_requested() -> ControlFlow<()> {
    if requested() {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}
