//! Replays the fuzz corpus on stable, as ordinary tests: the committed seeds
//! (`fuzz/corpus/<target>/`) and every input that once crashed, hung or over-allocated
//! (`tests/fixtures/fuzz/<target>/`), each through the same function its fuzz target calls
//! (`blindspot::fuzzing`). Only that nothing panics is asserted: refusing garbage is correct.

use std::path::{Path, PathBuf};
use std::time::Instant;

use blindspot::fuzzing::TARGETS;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_target_has_seeds() {
    for (name, _) in TARGETS {
        let seeds = files(&root().join("fuzz/corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seed");
    }
}

#[test]
fn corpus_and_regressions_replay_without_panics() {
    let mut replayed = 0;
    for (name, run) in TARGETS {
        for dir in [
            root().join("fuzz/corpus").join(name),
            root().join("tests/fixtures/fuzz").join(name),
        ] {
            for file in files(&dir) {
                let bytes = std::fs::read(&file).unwrap();
                let start = Instant::now();
                // A panic fails the test, naming the file in the backtrace's context line.
                eprintln!("{name}: {}", file.display());
                run(&bytes);
                let took = start.elapsed();
                // Generous for the debug profile; a hang would take far longer.
                assert!(took.as_secs() < 20, "{}: took {took:?}", file.display());
                replayed += 1;
            }
        }
    }
    eprintln!("{replayed} inputs replayed");
    assert!(replayed >= TARGETS.len());
}

#[test]
fn fuzz_folders_name_known_targets() {
    // A corpus or crash folder for a target that no longer exists would silently stop being
    // replayed.
    for dir in [
        root().join("fuzz/corpus"),
        root().join("tests/fixtures/fuzz"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "{}/{name} is not a target of blindspot::fuzzing",
                dir.display()
            );
        }
    }
}
