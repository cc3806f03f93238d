//! The demo's synthetic shapes: determinism, balance, visibility, no colour shortcut,
//! the files written, and a contact sheet for a person to look at.

use std::path::PathBuf;

use blindspot::demo::generator::{
    CLASSES, DEFAULT_SIZE, DemoError, dataset_fingerprint, generate, label_of, write_dataset,
    write_gallery,
};
use image::{RgbImage, imageops};

#[test]
fn same_seed_and_index_give_identical_images() {
    for index in [0, 1, 9, 37, 12_345] {
        assert_eq!(generate(7, index, 32), generate(7, index, 32));
    }
}

#[test]
fn an_image_alone_equals_it_in_a_sequential_run() {
    let run: Vec<_> = (0..40).map(|i| generate(11, i, 32)).collect();
    assert_eq!(generate(11, 37, 32), run[37]);
}

#[test]
fn different_seeds_and_indices_differ() {
    assert_ne!(generate(0, 5, 32).0, generate(1, 5, 32).0);
    assert_ne!(generate(0, 5, 32).0, generate(0, 15, 32).0);
}

#[test]
fn pinned_fingerprint() {
    // Pinned on purpose: ANY change to the generator (draw order, ranges, rendering, RNG
    // seeding) changes the demo dataset and must show up here. If the change is intended,
    // update the literal and say so in the commit, since trained demo models then no
    // longer match freshly generated data bit for bit.
    assert_eq!(
        dataset_fingerprint(0, 20, 32),
        "d043cbe1a6cdda8e8bc784c9f2ccfa8ba56225670afd7a476d41ffb6d6e31525"
    );
}

#[test]
fn sizes_follow_the_argument() {
    for size in [16, 32, 57, 128] {
        let (img, _) = generate(3, 4, size);
        assert_eq!(img.dimensions(), (size, size));
    }
}

#[test]
fn labels_are_balanced_and_in_range() {
    let mut counts = [0usize; 10];
    for i in 0..1000 {
        let (_, label) = generate(2, i, 16);
        assert_eq!(label, label_of(i));
        assert!(label < CLASSES.len());
        counts[label] += 1;
    }
    assert_eq!(counts, [100; 10]);
}

fn luma(p: &image::Rgb<u8>) -> f64 {
    (0.2126 * f64::from(p[0]) + 0.7152 * f64::from(p[1]) + 0.0722 * f64::from(p[2])) / 255.0
}

#[test]
fn every_image_shows_a_foreground_and_a_background() {
    // The 2nd and 98th luma percentiles must be well apart: both regions cover more than 2%
    // of the image and differ clearly, whatever the class, size or colours.
    for size in [16, 32] {
        for i in 0..1000 {
            let (img, label) = generate(4, i, size);
            let mut l: Vec<f64> = img.pixels().map(luma).collect();
            l.sort_by(f64::total_cmp);
            let (lo, hi) = (l[l.len() / 50], l[l.len() - 1 - l.len() / 50]);
            assert!(
                hi - lo > 0.2,
                "image {i} ({}) at {size}px: luma spread {:.3}",
                CLASSES[label],
                hi - lo
            );
        }
    }
}

fn mean_colour(img: &RgbImage) -> [f64; 3] {
    let mut m = [0.0; 3];
    for p in img.pixels() {
        for c in 0..3 {
            m[c] += f64::from(p[c]) / 255.0;
        }
    }
    m.map(|v| v / f64::from(img.width() * img.height()))
}

fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|c| (a[c] - b[c]).powi(2)).sum::<f64>().sqrt()
}

#[test]
fn colour_carries_no_label_information() {
    // A per-image mean colour varies with s.d. about 0.2 per channel, so class means over
    // n images scatter by about 0.2 / sqrt(n) from sampling alone; with 200 per class the
    // largest gap between two of ten class means is ~0.06 when colour is uninformative.
    let n = 2000;
    let means: Vec<([f64; 3], usize)> = (0..n)
        .map(|i| {
            let (img, label) = generate(5, i, 32);
            (mean_colour(&img), label)
        })
        .collect();
    let mut class_mean = [[0.0; 3]; 10];
    for (m, label) in &means {
        for c in 0..3 {
            class_mean[*label][c] += m[c] / (n / 10) as f64;
        }
    }
    for a in 0..10 {
        for b in a + 1..10 {
            let d = distance(class_mean[a], class_mean[b]);
            assert!(d < 0.1, "{} vs {}: {d:.3}", CLASSES[a], CLASSES[b]);
        }
    }

    // Sharper: nearest class mean, fitted on one half, predicts the other half no better
    // than chance (10%). Its standard error over 1000 images is about 1%.
    let half = (n / 2) as usize;
    let mut fit = [[0.0; 3]; 10];
    for (m, label) in &means[..half] {
        for c in 0..3 {
            fit[*label][c] += m[c] / (half / 10) as f64;
        }
    }
    let correct = means[half..]
        .iter()
        .filter(|(m, label)| {
            let guess = (0..10)
                .min_by(|&a, &b| distance(*m, fit[a]).total_cmp(&distance(*m, fit[b])))
                .unwrap_or(0);
            guess == *label
        })
        .count();
    let accuracy = correct as f64 / half as f64;
    assert!(
        accuracy < 0.15,
        "mean colour predicts the class: {accuracy:.3}"
    );
}

#[test]
fn write_dataset_writes_image_folder_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    write_dataset(dir.path(), 9, 23, 24, |n| seen.push(n)).unwrap();
    assert_eq!(seen, (1..=23).collect::<Vec<_>>());

    let tsv = std::fs::read_to_string(dir.path().join("labels.tsv")).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(lines.next(), Some("file\tlabel"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 23);
    for (i, row) in rows.iter().enumerate() {
        let (file, label) = row.split_once('\t').unwrap();
        let label: usize = label.parse().unwrap();
        assert_eq!(label, i % 10);
        assert_eq!(file, format!("{}/{i:05}.png", CLASSES[label]));
        let on_disk = image::open(dir.path().join(file)).unwrap().to_rgb8();
        assert_eq!(on_disk, generate(9, i as u64, 24).0, "{file}");
    }
    for class in CLASSES {
        assert!(dir.path().join(class).is_dir());
        // No temporary files are left behind.
        for entry in std::fs::read_dir(dir.path().join(class)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(name.ends_with(".png") && !name.starts_with('.'), "{name}");
        }
    }
}

#[test]
fn write_dataset_rejects_bad_sizes() {
    let dir = tempfile::tempdir().unwrap();
    for size in [0, 15, 129] {
        let err = write_dataset(dir.path(), 0, 1, size, |_| {}).unwrap_err();
        assert!(matches!(err, DemoError::InvalidSize(s) if s == size));
    }
}

#[test]
fn write_dataset_names_the_path_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let err = write_dataset(&blocker, 0, 1, 32, |_| {}).unwrap_err();
    assert!(err.to_string().contains("file"), "{err}");
}

#[test]
fn write_gallery_writes_per_class_examples() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_gallery(dir.path(), 0, 3, 32).unwrap();
    assert_eq!(paths.len(), 30);
    for class in CLASSES {
        for n in 1..=3 {
            let path = dir.path().join(format!("{class}_{n}.png"));
            assert!(paths.contains(&path), "{}", path.display());
            assert_eq!(image::open(&path).unwrap().dimensions(), (32, 32));
        }
    }
    // Deterministic, and not the training images of the same seed.
    let again = tempfile::tempdir().unwrap();
    write_gallery(again.path(), 0, 3, 32).unwrap();
    let first = image::open(dir.path().join("circle_1.png"))
        .unwrap()
        .to_rgb8();
    let second = image::open(again.path().join("circle_1.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(first, second);
    assert!((0..200).step_by(10).all(|i| generate(0, i, 32).0 != first));
}

use image::GenericImageView as _;

/// A contact sheet for LOOKING: one row per class, 12 images each, 4x nearest-neighbour.
/// Written to `$DEMO_CONTACT_SHEET` if set (e.g. the worktree root, never committed),
/// otherwise under Cargo's test temp dir so plain test runs leave the tree clean.
#[test]
fn contact_sheet() {
    let path = std::env::var_os("DEMO_CONTACT_SHEET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("contact_sheet.png"));
    let (cols, scale, gap) = (12u32, 4u32, 4u32);
    let size = std::env::var("DEMO_CONTACT_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SIZE);
    let cell = size * scale + gap;
    let mut sheet = RgbImage::from_pixel(cols * cell + gap, 10 * cell + gap, image::Rgb([128; 3]));
    for label in 0..10u32 {
        for col in 0..cols {
            let index = u64::from(col * 10 + label);
            let (img, got) = generate(0, index, size);
            assert_eq!(got, label as usize);
            let big = imageops::resize(
                &img,
                size * scale,
                size * scale,
                imageops::FilterType::Nearest,
            );
            imageops::replace(
                &mut sheet,
                &big,
                i64::from(gap + col * cell),
                i64::from(gap + label * cell),
            );
        }
    }
    sheet.save(&path).unwrap();
}
