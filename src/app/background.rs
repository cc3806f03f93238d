//! Short jobs that must not block the UI but need no model: file dialogs, exports, reading and
//! deleting history folders. Each runs on its own thread and reports back over one channel,
//! waking the UI when it is done. (Model work goes to the worker thread instead.)

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use crate::history::{HistoryEntry, HistoryProblem};

use super::worker::{FinishedRun, Slot};

/// What a file dialog was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogPurpose {
    Model,
    Image(Slot),
    GridImage,
    Run,
    ExportDir,
    /// A view's labelled images: a folder, or a .safetensors set.
    ImagesFolder(ImagesFor),
    ImagesFile(ImagesFor),
    /// The reach evaluation's output folder.
    ReachOut,
}

/// Which view's labelled-images field a dialog fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagesFor {
    Reach,
    Frequency,
}

impl DialogPurpose {
    /// What to do instead of the dialog: every purpose has a field or a drop target.
    pub fn without_dialog(self) -> &'static str {
        match self {
            DialogPurpose::Model => {
                "type or paste the checkpoint's path into the \"checkpoint path\" field and \
                 press Enter, or drop the file on the window"
            }
            DialogPurpose::Image(_) | DialogPurpose::GridImage => {
                "type or paste the image's path into its field, or drop the file on the window"
            }
            DialogPurpose::Run => {
                "type or paste the run folder into the \"run folder path\" field, or drop the \
                 folder on the window"
            }
            DialogPurpose::ExportDir => "type or paste the folder into the export folder field",
            DialogPurpose::ImagesFolder(_) | DialogPurpose::ImagesFile(_) => {
                "type or paste the path of the labelled images into their field"
            }
            DialogPurpose::ReachOut => "type or paste the folder into the output folder field",
        }
    }
}

/// A dialog that comes back empty sooner than this was never shown. rfd cannot say so itself:
/// when neither the desktop portal nor zenity can show a dialog it logs the error and returns
/// None, exactly as for a cancel, but it does so at once, and nobody sees, reads and cancels
/// a dialog within a quarter of a second.
pub const QUICKEST_CANCEL: Duration = Duration::from_millis(250);

/// What a dialog that returned `paths` after `took` means.
pub fn dialog_done(purpose: DialogPurpose, paths: Vec<PathBuf>, took: Duration) -> Done {
    if paths.is_empty() && took < QUICKEST_CANCEL {
        Done::NoDialog(purpose)
    } else {
        Done::Dialog { purpose, paths }
    }
}

pub enum Done {
    /// A dialog closed; empty when cancelled.
    Dialog {
        purpose: DialogPurpose,
        paths: Vec<PathBuf>,
    },
    /// No dialog could be shown (no desktop portal, no zenity), so the user must be told.
    NoDialog(DialogPurpose),
    /// An export finished: what was written, or the error.
    Exported(Result<String, String>),
    History(Result<(Vec<HistoryEntry>, Vec<HistoryProblem>), String>),
    RunOpened(Result<Arc<FinishedRun>, String>),
    Deleted(Result<PathBuf, String>),
    /// A labelled folder was listed for the target-class picker.
    DataFolder(Result<super::panels::target_class::DataFolder, String>),
    /// A deleted run was brought back.
    Restored(Result<PathBuf, String>),
    /// A folder was handed to the system's file manager.
    Opened(Result<PathBuf, String>),
}

pub struct Background {
    tx: Sender<Done>,
    rx: Receiver<Done>,
    ctx: egui::Context,
}

impl Background {
    pub fn new(ctx: egui::Context) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        Self { tx, rx, ctx }
    }

    /// Runs `job` on a new thread; its result arrives through [`Self::try_recv`].
    pub fn spawn(&self, job: impl FnOnce() -> Done + Send + 'static) {
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("blindspot-io".into())
            .spawn(move || {
                let _ = tx.send(job());
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            let _ = self.tx.send(Done::Exported(Err(format!(
                "cannot start a background thread: {e}"
            ))));
        }
    }

    /// Shows `dir` in the system's file manager (xdg-open, open, or explorer).
    pub fn open_folder(&self, dir: PathBuf) {
        self.spawn(move || {
            let program = if cfg!(target_os = "macos") {
                "open"
            } else if cfg!(windows) {
                "explorer"
            } else {
                "xdg-open"
            };
            // Waiting reaps the launcher (it returns once the file manager is started).
            let result = match std::process::Command::new(program).arg(&dir).status() {
                Ok(_) => Ok(dir),
                Err(e) => Err(format!("cannot run {program} on {}: {e}", dir.display())),
            };
            Done::Opened(result)
        });
    }

    pub fn try_recv(&self) -> Option<Done> {
        self.rx.try_recv().ok()
    }

    /// Opens a native file dialog on a background thread (rfd; on Linux the desktop portal, or
    /// zenity when no portal runs).
    pub fn dialog(&self, purpose: DialogPurpose) {
        self.spawn(move || {
            let opened = Instant::now();
            let dialog = rfd::FileDialog::new();
            let paths = match purpose {
                DialogPurpose::Model => dialog
                    .set_title("Open a checkpoint")
                    .add_filter("checkpoints", &["safetensors", "pth", "th", "pt", "bin"])
                    .add_filter("all files", &["*"])
                    .pick_file()
                    .into_iter()
                    .collect(),
                DialogPurpose::Image(_) | DialogPurpose::GridImage => dialog
                    .set_title("Open an image")
                    .add_filter("images", &["png", "jpg", "jpeg", "webp"])
                    .add_filter("all files", &["*"])
                    .pick_file()
                    .into_iter()
                    .collect(),
                DialogPurpose::Run => dialog
                    .set_title("Open a run folder (with run.json)")
                    .pick_folder()
                    .into_iter()
                    .collect(),
                DialogPurpose::ExportDir => dialog
                    .set_title("Export into this folder")
                    .pick_folder()
                    .into_iter()
                    .collect(),
                DialogPurpose::ImagesFolder(_) => dialog
                    .set_title("Labelled images: one folder per class, or labels.tsv")
                    .pick_folder()
                    .into_iter()
                    .collect(),
                DialogPurpose::ImagesFile(_) => dialog
                    .set_title("Labelled images: .safetensors with images and labels")
                    .add_filter("safetensors", &["safetensors"])
                    .pick_file()
                    .into_iter()
                    .collect(),
                DialogPurpose::ReachOut => dialog
                    .set_title("Reach evaluation folder (an existing one resumes)")
                    .pick_folder()
                    .into_iter()
                    .collect(),
            };
            dialog_done(purpose, paths, opened.elapsed())
        });
    }
}
