//! Where blindspot keeps its own files on this machine. A leaf: depends on nothing of ours.

use std::path::PathBuf;

/// `$BLINDSPOT_DATA_DIR`, else the platform data folder (e.g. `~/.local/share/blindspot`):
/// the run history lives in its `runs`, and an LPIPS weights file may sit in it.
pub fn data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BLINDSPOT_DATA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "blindspot").map(|d| d.data_dir().to_path_buf())
}
