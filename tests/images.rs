//! Tests of the `images` module: loading, preprocessing parity with Pillow/torchvision, tensor
//! conversion, atomic saving and dataset listing.

use std::fs;
use std::path::Path;

use blindspot::images::{ImageError, load_rgb, save_png_atomic};
use image::{GrayAlphaImage, GrayImage, ImageBuffer, Luma, LumaA, Rgb, RgbImage, Rgba, RgbaImage};

/// A deterministic image with every byte value in every channel somewhere.
fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let i = y * w + x;
        Rgb([
            (i % 256) as u8,
            ((i * 7 + 3) % 256) as u8,
            ((i * 31 + y) % 256) as u8,
        ])
    })
}

fn assert_names_path(err: &ImageError, path: &Path) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error message does not name {}: {msg}",
        path.display()
    );
}

// ---------------------------------------------------------------- loading

#[test]
fn gray_png_loads_as_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gray.png");
    GrayImage::from_fn(3, 2, |x, y| Luma([(x * 40 + y * 100) as u8]))
        .save(&path)
        .unwrap();
    let img = load_rgb(&path).unwrap();
    assert_eq!(img.dimensions(), (3, 2));
    for (x, y, p) in img.enumerate_pixels() {
        let v = (x * 40 + y * 100) as u8;
        assert_eq!(*p, Rgb([v, v, v]));
    }
}

#[test]
fn gray_alpha_png_drops_alpha() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gray_alpha.png");
    GrayAlphaImage::from_fn(2, 2, |x, y| {
        LumaA([(50 + x * 100 + y) as u8, (x * 255) as u8])
    })
    .save(&path)
    .unwrap();
    let img = load_rgb(&path).unwrap();
    for (x, y, p) in img.enumerate_pixels() {
        let v = (50 + x * 100 + y) as u8;
        assert_eq!(*p, Rgb([v, v, v]));
    }
}

#[test]
fn rgba_png_drops_alpha_without_compositing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rgba.png");
    // Fully transparent pixels keep their colour, as with Pillow's convert("RGB").
    let rgba = RgbaImage::from_fn(4, 3, |x, y| {
        Rgba([(x * 60) as u8, (y * 80) as u8, 200, (x * 85) as u8])
    });
    rgba.save(&path).unwrap();
    let img = load_rgb(&path).unwrap();
    for (x, y, p) in img.enumerate_pixels() {
        assert_eq!(*p, Rgb([(x * 60) as u8, (y * 80) as u8, 200]));
    }
}

#[test]
fn sixteen_bit_pngs_round_to_nearest_8_bit() {
    let dir = tempfile::tempdir().unwrap();
    let samples: [u16; 6] = [0, 1000, 32896, 257 * 100, 65407, 65535];
    // round(v * 255 / 65535): 1000 -> 3.89 -> 4, 32896 -> 128, 65407 -> 254.50 -> 255.
    let expected: [u8; 6] = [0, 4, 128, 100, 255, 255];

    let rgb_path = dir.path().join("rgb16.png");
    ImageBuffer::<Rgb<u16>, Vec<u16>>::from_fn(6, 1, |x, _| {
        let v = samples[x as usize];
        Rgb([v, 65535 - v, v])
    })
    .save(&rgb_path)
    .unwrap();
    let img = load_rgb(&rgb_path).unwrap();
    for x in 0..6 {
        let e = expected[x as usize];
        // 65535 - v rounds to 255 - round(v * 255 / 65535) by symmetry.
        assert_eq!(*img.get_pixel(x, 0), Rgb([e, 255 - e, e]));
    }

    let gray_path = dir.path().join("gray16.png");
    ImageBuffer::<Luma<u16>, Vec<u16>>::from_fn(6, 1, |x, _| Luma([samples[x as usize]]))
        .save(&gray_path)
        .unwrap();
    let img = load_rgb(&gray_path).unwrap();
    for x in 0..6 {
        let e = expected[x as usize];
        assert_eq!(*img.get_pixel(x, 0), Rgb([e, e, e]));
    }
}

#[test]
fn format_is_detected_by_content_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    let img = pattern(16, 8);
    // A JPEG named .png and a PNG named .jpg both load.
    let jpeg_bytes = {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        buf.into_inner()
    };
    let as_png = dir.path().join("really_jpeg.png");
    fs::write(&as_png, &jpeg_bytes).unwrap();
    assert_eq!(load_rgb(&as_png).unwrap().dimensions(), (16, 8));

    let png_as_jpg = dir.path().join("really_png.jpg");
    img.save_with_format(&png_as_jpg, image::ImageFormat::Png)
        .unwrap();
    assert_eq!(load_rgb(&png_as_jpg).unwrap(), img);

    let webp = dir.path().join("lossless.webp");
    img.save(&webp).unwrap();
    assert_eq!(load_rgb(&webp).unwrap(), img);
}

// ---------------------------------------------------------------- load errors

#[test]
fn missing_file_error_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.png");
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::Read { .. }), "{err:?}");
    assert_names_path(&err, &path);
}

#[test]
fn directory_error_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_rgb(dir.path()).unwrap_err();
    assert!(matches!(err, ImageError::IsDirectory { .. }), "{err:?}");
    assert_names_path(&err, dir.path());
}

#[test]
fn empty_file_error_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.png");
    fs::write(&path, b"").unwrap();
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::EmptyFile { .. }), "{err:?}");
    assert_names_path(&err, &path);
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn text_file_error_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.jpg");
    fs::write(&path, "this is not an image\n").unwrap();
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::NotAnImage { .. }), "{err:?}");
    assert_names_path(&err, &path);
}

#[test]
fn truncated_png_error_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.png");
    pattern(64, 64).save(&full).unwrap();
    let bytes = fs::read(&full).unwrap();
    for cut in [bytes.len() / 2, 40, 20] {
        let path = dir.path().join(format!("cut{cut}.png"));
        fs::write(&path, &bytes[..cut]).unwrap();
        let err = load_rgb(&path).unwrap_err();
        assert!(matches!(err, ImageError::Corrupt { .. }), "{err:?}");
        assert_names_path(&err, &path);
    }
}

#[test]
fn unsupported_format_error_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anim.gif");
    // A GIF header: recognised as GIF, but this build has no GIF decoder.
    fs::write(&path, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::Unsupported { .. }), "{err:?}");
    assert_names_path(&err, &path);
}

#[test]
fn absurd_dimensions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.png");
    // 20000 px wide, small on disk: the decoder must refuse it before allocating.
    GrayImage::new(20_000, 1).save(&path).unwrap();
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err:?}");
    assert_names_path(&err, &path);
}

// ---------------------------------------------------------------- preprocessing

// ---------------------------------------------------------------- tensors

// ---------------------------------------------------------------- saving

#[test]
fn save_png_atomic_writes_and_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.png");
    let a = pattern(9, 5);
    save_png_atomic(&a, &path).unwrap();
    assert_eq!(load_rgb(&path).unwrap(), a);
    let b = RgbImage::from_pixel(3, 3, Rgb([1, 2, 3]));
    save_png_atomic(&b, &path).unwrap();
    assert_eq!(load_rgb(&path).unwrap(), b);
    // No temporary file is left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("out.png")]);
}

#[test]
fn save_png_atomic_error_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let img = pattern(2, 2);
    let missing_dir = dir.path().join("no/such/dir/out.png");
    let err = save_png_atomic(&img, &missing_dir).unwrap_err();
    assert_names_path(&err, &missing_dir);

    // Parent is a file, not a directory.
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let under_file = file.join("out.png");
    let err = save_png_atomic(&img, &under_file).unwrap_err();
    assert_names_path(&err, &under_file);

    // Target is an existing directory: the rename fails and the temp file is cleaned up.
    let target_dir = dir.path().join("taken");
    fs::create_dir(&target_dir).unwrap();
    fs::write(target_dir.join("keep"), b"x").unwrap();
    let err = save_png_atomic(&img, &target_dir).unwrap_err();
    assert_names_path(&err, &target_dir);
    let leftovers = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0);
}

// ---------------------------------------------------------------- datasets
