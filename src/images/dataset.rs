//! Listing labelled image datasets on disk.

use std::fs;
use std::path::{Path, PathBuf};

use super::ImageError;

/// One image file and its class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabeledImage {
    pub path: PathBuf,
    /// Class index in the model's output order.
    pub label: usize,
    /// Human-readable class, where the dataset says it (folder name, or a `class_name` /
    /// `short_name` column of `labels.tsv`).
    pub class_name: Option<String>,
    /// Where the label was read: `labels.tsv` and its line (`None` in an ImageFolder tree,
    /// where the label is the class folder's position), so a refusal can point at it.
    pub label_source: Option<(PathBuf, usize)>,
}

/// The images of a dataset directory, in a fixed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    pub images: Vec<LabeledImage>,
    /// All class names in label order, when the layout defines them (ImageFolder). A
    /// `labels.tsv` lists only the classes it uses, so it gives `None`.
    pub class_names: Option<Vec<String>>,
}

/// Name of the label file that, when present, takes precedence over the folder layout.
const LABELS_FILE: &str = "labels.tsv";

/// Extensions (lower case) of the files an ImageFolder listing picks up: the formats
/// [`super::load_rgb`] reads.
const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// How deep an ImageFolder class directory may nest; deeper means a symlink loop, most likely.
const MAX_DEPTH: usize = 32;

/// Lists the labelled images of `dir`.
///
/// - If `dir/labels.tsv` exists, it is read: a header row naming the columns, then one image per
///   row. Columns `file` and `label` are required; `file` is relative to `dir` or to
///   `dir/images/` (whichever holds it), `label` a non-negative integer. A `class_name` column,
///   or failing that `short_name`, fills [`LabeledImage::class_name`]; other columns are ignored.
///   Rows keep the file's order.
/// - Otherwise `dir` is in torchvision's ImageFolder layout: each subdirectory is a class,
///   labelled by its position among the sorted names, and holds that class's images (PNG, JPEG,
///   WebP by extension, any case; subdirectories are searched too), sorted as ImageFolder sorts
///   them. Unlike ImageFolder, hidden entries (names starting with `.`, e.g.
///   `.ipynb_checkpoints`) are skipped, since they are never meant as classes or samples.
///
/// An empty dataset, and a class directory without images, are errors: with the latter,
/// dropping the class would shift every later label.
pub fn list_dataset(dir: &Path) -> Result<Dataset, ImageError> {
    let labels = dir.join(LABELS_FILE);
    let dataset = if labels.is_file() {
        list_labels_tsv(dir, &labels)?
    } else {
        list_image_folder(dir)?
    };
    if dataset.images.is_empty() {
        return Err(ImageError::Dataset {
            path: dir.to_path_buf(),
            detail: "dataset is empty: no images listed".to_string(),
        });
    }
    Ok(dataset)
}

fn list_labels_tsv(dir: &Path, labels: &Path) -> Result<Dataset, ImageError> {
    let text = fs::read_to_string(labels).map_err(|source| ImageError::Read {
        path: labels.to_path_buf(),
        source,
    })?;
    let row_err = |line: usize, detail: String| ImageError::LabelsTsv {
        path: labels.to_path_buf(),
        line,
        detail,
    };
    // `lines` also strips the `\r` of files written on Windows.
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let header = match lines.next() {
        Some((_, h)) => h.trim_start_matches('\u{feff}'),
        None => {
            return Err(row_err(
                1,
                "file is empty; expected a header row".to_string(),
            ));
        }
    };
    let columns: Vec<&str> = header.split('\t').map(str::trim).collect();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let missing = |name: &str| {
        row_err(
            1,
            format!("header has no `{name}` column (found columns: {columns:?})"),
        )
    };
    let file_col = column("file").ok_or_else(|| missing("file"))?;
    let label_col = column("label").ok_or_else(|| missing("label"))?;
    let name_col = column("class_name").or_else(|| column("short_name"));
    let needed = file_col.max(label_col) + 1;

    let mut images = Vec::new();
    for (line, row) in lines {
        if row.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = row.split('\t').collect();
        if fields.len() < needed {
            return Err(row_err(
                line,
                format!(
                    "expected at least {needed} tab-separated fields, found {}",
                    fields.len()
                ),
            ));
        }
        let file = fields[file_col].trim();
        if file.is_empty() {
            return Err(row_err(line, "empty `file` field".to_string()));
        }
        let label_text = fields[label_col].trim();
        let label = parse_label(label_text).map_err(|detail| row_err(line, detail))?;
        // Both layouts occur: files next to labels.tsv, or in an `images/` subdirectory.
        let direct = dir.join(file);
        let in_images = dir.join("images").join(file);
        let path = if direct.is_file() {
            direct
        } else if in_images.is_file() {
            in_images
        } else {
            return Err(row_err(
                line,
                format!(
                    "image `{file}` not found as {} or {}",
                    direct.display(),
                    in_images.display()
                ),
            ));
        };
        let class_name = name_col
            .and_then(|c| fields.get(c))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        images.push(LabeledImage {
            path,
            label,
            class_name,
            label_source: Some((labels.to_path_buf(), line)),
        });
    }
    Ok(Dataset {
        images,
        class_names: None,
    })
}

/// A class id as `labels.tsv` writes it: a decimal integer in u32's range (the type every
/// consumer holds it in), so that 4294967299 is refused rather than wrapping to class 3.
fn parse_label(text: &str) -> Result<usize, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(l) => usize::try_from(l).map_err(|_| format!("label {l} does not fit this machine")),
            Err(_) => Err(format!(
                "label {text} is out of range: class ids go up to {}",
                u32::MAX
            )),
        };
    }
    Err(format!("label `{text}` is not a non-negative integer"))
}

/// Refuses the first label that is not an output of a model with `num_classes` classes,
/// naming the `labels.tsv` line it was read from, or the class folder that gave it.
pub fn check_labels(images: &[LabeledImage], num_classes: usize) -> Result<(), ImageError> {
    let Some(bad) = images.iter().find(|im| im.label >= num_classes) else {
        return Ok(());
    };
    let range = format!(
        "the model has {num_classes} classes (ids 0 to {})",
        num_classes.saturating_sub(1)
    );
    Err(match &bad.label_source {
        Some((path, line)) => ImageError::LabelsTsv {
            path: path.clone(),
            line: *line,
            detail: format!("label {} is not a class of the model: {range}", bad.label),
        },
        None => ImageError::Dataset {
            path: bad
                .path
                .parent()
                .map_or_else(|| bad.path.clone(), Path::to_path_buf),
            detail: format!(
                "this is class folder number {} in sorted order, but {range}",
                bad.label + 1
            ),
        },
    })
}

fn list_image_folder(dir: &Path) -> Result<Dataset, ImageError> {
    let mut classes: Vec<(String, PathBuf)> = read_entries(dir)?
        .into_iter()
        .filter(|(_, path)| path.is_dir())
        .collect();
    if classes.is_empty() {
        return Err(ImageError::Dataset {
            path: dir.to_path_buf(),
            detail: format!(
                "dataset is empty: no {LABELS_FILE} and no class subdirectories \
                 (expected <dir>/<class>/<image> or a {LABELS_FILE} with columns file and label)"
            ),
        });
    }
    // Python sorts `str` by code point, which is the byte order of UTF-8 that `String` uses.
    classes.sort();
    let mut images = Vec::new();
    for (label, (name, class_dir)) in classes.iter().enumerate() {
        let mut files = Vec::new();
        collect_images(class_dir, 0, &mut files)?;
        if files.is_empty() {
            return Err(ImageError::Dataset {
                path: class_dir.clone(),
                detail: format!(
                    "class directory `{name}` holds no .png/.jpg/.jpeg/.webp images; \
                     remove it or add images, since skipping it would shift later labels"
                ),
            });
        }
        // torchvision: `for root, _, fnames in sorted(os.walk(class_dir)): for f in sorted(fnames)`,
        // i.e. ordered by directory path, then file name within it.
        files.sort();
        images.extend(files.into_iter().map(|(_, _, path)| LabeledImage {
            path,
            label,
            class_name: Some(name.clone()),
            label_source: None,
        }));
    }
    Ok(Dataset {
        images,
        class_names: Some(classes.into_iter().map(|(name, _)| name).collect()),
    })
}

/// Non-hidden entries of `dir` as (name, path).
fn read_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, ImageError> {
    let list_err = |source| ImageError::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.push((name, entry.path()));
        }
    }
    Ok(out)
}

/// Appends (directory, file name, path) for every image under `dir`, recursively.
fn collect_images(
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, String, PathBuf)>,
) -> Result<(), ImageError> {
    if depth > MAX_DEPTH {
        return Err(ImageError::Dataset {
            path: dir.to_path_buf(),
            detail: format!("directories nest deeper than {MAX_DEPTH} levels (a symlink loop?)"),
        });
    }
    let dir_key = dir.to_string_lossy().into_owned();
    for (name, path) in read_entries(dir)? {
        // `is_dir` / `is_file` follow symlinks, as ImageFolder's `os.walk(followlinks=True)` does.
        if path.is_dir() {
            collect_images(&path, depth + 1, out)?;
        } else if path.is_file() && has_image_extension(&path) {
            out.push((dir_key.clone(), name, path));
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}
