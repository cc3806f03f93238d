//! Tests of the `images` module: loading, preprocessing parity with Pillow/torchvision, tensor
//! conversion, atomic saving and dataset listing.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use blindspot::images::{
    ImageError, Preprocess, from_tensor, list_dataset, load_for_model, load_rgb, preprocess,
    resize_bilinear, save_png_atomic, to_tensor,
};
use candle_core::{DType, Device, Tensor};
use image::{GrayAlphaImage, GrayImage, ImageBuffer, Luma, LumaA, Rgb, RgbImage, Rgba, RgbaImage};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

fn data(rel: &str) -> PathBuf {
    Path::new(DATA).join(rel)
}

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

#[test]
fn cifar_pngs_decode_bit_exact() {
    // The PNGs are the same pixels as the safetensors reference.
    let bytes = fs::read(data("cifar10_test_exact1017.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let images = st.tensor("images").unwrap();
    assert_eq!(images.shape(), &[1017, 32, 32, 3]);
    let ds = list_dataset(&data("cifar10_test_png")).unwrap();
    for item in &ds.images {
        let stem = item.path.file_stem().unwrap().to_str().unwrap();
        let index: usize = stem.parse().unwrap();
        let img = load_rgb(&item.path).unwrap();
        let reference = &images.data()[index * 3072..(index + 1) * 3072];
        assert_eq!(
            img.as_raw().as_slice(),
            reference,
            "{}",
            item.path.display()
        );
    }
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

#[test]
fn for_input_picks_imagenet_convention_from_128() {
    assert_eq!(
        Preprocess::for_input(224, 224),
        Preprocess::ResizeShorterCenterCrop {
            resize: 256,
            height: 224,
            width: 224
        }
    );
    assert_eq!(
        Preprocess::for_input(32, 32),
        Preprocess::Resize {
            height: 32,
            width: 32
        }
    );
    assert_eq!(
        Preprocess::for_input(64, 64),
        Preprocess::Resize {
            height: 64,
            width: 64
        }
    );
    // round(128 / 0.875) = round(146.29) = 146.
    assert_eq!(
        Preprocess::for_input(128, 160),
        Preprocess::ResizeShorterCenterCrop {
            resize: 146,
            height: 128,
            width: 160
        }
    );
}

#[test]
fn resize_to_same_size_is_identity() {
    let img = pattern(33, 17);
    let p = Preprocess::Resize {
        height: 17,
        width: 33,
    };
    assert_eq!(preprocess(&img, &p), img);
    // Resize(shorter side = 17) then a full-size crop is the identity as well.
    let p = Preprocess::ResizeShorterCenterCrop {
        resize: 17,
        height: 17,
        width: 33,
    };
    assert_eq!(preprocess(&img, &p), img);
}

#[test]
fn resize_gives_requested_size_and_keeps_constant_images() {
    let img = RgbImage::from_pixel(50, 37, Rgb([12, 130, 255]));
    for (w, h) in [(32, 32), (100, 7), (1, 1), (50, 80)] {
        let out = preprocess(
            &img,
            &Preprocess::Resize {
                height: h,
                width: w,
            },
        );
        assert_eq!(out.dimensions(), (w, h));
        assert!(out.pixels().all(|p| *p == Rgb([12, 130, 255])), "{w}x{h}");
    }
}

#[test]
fn downscale_by_two_averages_pixel_pairs() {
    // Halving with Pillow's bilinear filter weights the two covered pixels 3/8 each and their
    // outer neighbours 1/8 each; on a horizontal ramp that is the mean of the inner pair.
    let img = RgbImage::from_fn(16, 2, |x, _| Rgb([(x * 10) as u8, 0, 0]));
    let out = resize_bilinear(&img, 8, 2);
    for x in 1..7 {
        // Inner pair 20x, 20x+10 -> mean 20x + 5.
        assert_eq!(out.get_pixel(x, 0)[0], (x * 20 + 5) as u8, "x = {x}");
    }
}

#[test]
fn center_crop_pads_with_black_when_crop_exceeds_image() {
    let img = RgbImage::from_pixel(10, 20, Rgb([200, 100, 50]));
    // Shorter side 10 stays 10, so the 14x14 crop needs 2 columns of padding each side.
    let out = preprocess(
        &img,
        &Preprocess::ResizeShorterCenterCrop {
            resize: 10,
            height: 14,
            width: 14,
        },
    );
    assert_eq!(out.dimensions(), (14, 14));
    for (x, _, p) in out.enumerate_pixels() {
        let inside = (2..12).contains(&x);
        let expected = if inside {
            Rgb([200, 100, 50])
        } else {
            Rgb([0, 0, 0])
        };
        assert_eq!(*p, expected, "x = {x}");
    }
}

/// A 45x70 image with pseudo-random content, given by a formula that is easy to repeat in
/// Python, so that rounding differences cannot hide in flat regions.
fn hashed_pattern() -> RgbImage {
    RgbImage::from_fn(45, 70, |x, y| {
        let v = |c: u32| {
            ((x * x * 31 + y * 17 + x * y * 7 + c * 101).wrapping_mul(2_654_435_761) >> 24) as u8
        };
        Rgb([v(0), v(1), v(2)])
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of `Image.frombytes("RGB", (45, 70), hashed_pattern).resize(size, BILINEAR).tobytes()`
/// computed with Pillow 13.0.0. Sizes cover both pass orders (see `resample.rs`), upscaling,
/// single-axis resizes and 1x1; for each two-axis case the other pass order gives a different
/// hash, so this pins the order too.
#[test]
fn resize_is_bit_exact_with_pillow() {
    let img = hashed_pattern();
    assert_eq!(&sha256_hex(img.as_raw())[..16], "c6f6a50976c9b242");
    let cases = [
        (
            (30, 20),
            "c0b95fe1a5de06363b2f616a434ccf1da84164c445ed1eeacf8e068e2ddd0a9c",
        ),
        (
            (20, 60),
            "e17bf9d2ad185d1a651714f49460a566827c64792131b15a46bee2af4c165b5a",
        ),
        (
            (90, 35),
            "b69e0dac2b4e1259b1ca137c56136a84e638962e8fabcd3bd16c9f952a1ed001",
        ),
        (
            (45, 20),
            "8193da42bacb838e826bf8e5d519d3bc1567c4473c9515fa72c8d4a2a067af99",
        ),
        (
            (13, 70),
            "90169de1263e9ffab682fd281272276eb5914776ea54a9b53fce5c70a4a97c0f",
        ),
        (
            (100, 150),
            "42797abb40f098ed790f3a4ae0f8870f406ceaa1df58643941b48bb3e8490f56",
        ),
        (
            (7, 3),
            "eb7ea987f5831463575d235854a8e4f1a5aef80e983ca06e0d4c942fac71a626",
        ),
        (
            (1, 1),
            "a2ebd0f6d8a10ecae38a72d6747797d88cad00384b4b3e35f2a4172ed0860640",
        ),
    ];
    for ((w, h), expected) in cases {
        let out = resize_bilinear(&img, w, h);
        assert_eq!(sha256_hex(out.as_raw()), expected, "{w}x{h}");
    }
    // torchvision Resize(32) gives 32x49 (int(32 * 70 / 45)); CenterCrop(24) then starts at row
    // round(12.5) = 12 (Python rounds half to even) and column 4.
    let out = preprocess(
        &img,
        &Preprocess::ResizeShorterCenterCrop {
            resize: 32,
            height: 24,
            width: 24,
        },
    );
    assert_eq!(
        sha256_hex(out.as_raw()),
        "b828c23b17c8d668ac4e01070c0a8e84557d45d98e65e1498c84f4f902eaae51"
    );
}

/// Pixels of `imagenet_sample_224.safetensors` were made by Pillow (convert RGB) + torchvision
/// `Resize(256)` + `CenterCrop(224)`; we run our pipeline on the same JPEGs and compare. JPEGs are
/// decoded by libjpeg-turbo at Pillow's settings and the resize and crop are a port of Pillow's,
/// so every byte of all 187 images must match.
#[test]
fn imagenet_preprocessing_matches_torchvision() {
    let start = Instant::now();
    let bytes = fs::read(data("imagenet_sample_224.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let reference = st.tensor("images").unwrap();
    assert_eq!(reference.shape(), &[187, 224, 224, 3]);
    let reference = reference.data();

    let tsv = fs::read_to_string(data("imagenet_sample/labels.tsv")).unwrap();
    let files: Vec<&str> = tsv
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(files.len(), 187);

    let p = Preprocess::for_input(224, 224);
    let per_image = 224 * 224 * 3;
    let mut differing = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let path = data("imagenet_sample/images").join(file);
        let img = preprocess(&load_rgb(&path).unwrap(), &p);
        assert_eq!(img.dimensions(), (224, 224));
        let theirs = &reference[i * per_image..(i + 1) * per_image];
        let off = img
            .as_raw()
            .iter()
            .zip(theirs)
            .filter(|(a, b)| a != b)
            .count();
        if off > 0 {
            differing.push((*file, off));
        }
    }
    println!(
        "imagenet parity: {} of 187 images byte-identical to Pillow + torchvision, took {:.2?}",
        187 - differing.len(),
        start.elapsed()
    );
    assert!(differing.is_empty(), "bytes differ in {differing:?}");
}

/// JPEG layouts beside the plain baseline one, each decoded by Pillow 13 (`convert("RGB")`) into
/// the PNG beside it by `tests/fixtures/jpeg/make_fixtures.py`: progressive, 4:2:2 subsampling,
/// CMYK (Pillow's inverted Adobe convention and its CMYK → RGB rounding), gray, and an EXIF
/// orientation of 6, which Pillow ignores unless asked, as we do.
#[test]
fn jpeg_layouts_decode_as_pillow_decodes_them() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jpeg"));
    for name in [
        "progressive",
        "subsampled_422",
        "cmyk",
        "gray",
        "exif_rotated",
    ] {
        let ours = load_rgb(&dir.join(format!("{name}.jpg"))).unwrap();
        let pillow = image::open(dir.join(format!("{name}.pillow.png")))
            .unwrap()
            .into_rgb8();
        assert_eq!(ours.dimensions(), pillow.dimensions(), "{name}");
        let off = ours
            .as_raw()
            .iter()
            .zip(pillow.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(off, 0, "{name}: {off} bytes differ from Pillow");
    }
    // Gray says so (the 1-channel models take it as gray).
    let (_, color) = blindspot::images::load_rgb_with_color(&dir.join("gray.jpg")).unwrap();
    assert!(!color);
}

/// A truncated JPEG is refused, as Pillow refuses it ("image file is truncated"), instead of
/// being padded with grey and classified; so is a header claiming a bomb's size.
#[test]
fn truncated_and_oversized_jpegs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let whole = fs::read(data("imagenet_sample/images/es_000_n01440764.JPEG")).unwrap();
    let cut = dir.path().join("first_third.jpg");
    fs::write(&cut, &whole[..whole.len() / 3]).unwrap();
    let err = load_rgb(&cut).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("first_third.jpg") && text.contains("truncated"),
        "{text}"
    );
    // Cut inside the headers, too.
    let tiny = dir.path().join("headers_only.jpg");
    fs::write(&tiny, &whole[..40]).unwrap();
    let err = load_rgb(&tiny).unwrap_err();
    assert!(err.to_string().contains("headers_only.jpg"), "{err}");

    // A valid small JPEG whose frame header claims 40000 × 40000.
    let mut bomb = fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jpeg/gray.jpg"
    ))
    .unwrap();
    let sof = bomb
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
        .unwrap();
    // SOF: marker, length (2), precision (1), height (2), width (2).
    for at in [sof + 5, sof + 7] {
        bomb[at..at + 2].copy_from_slice(&40_000u16.to_be_bytes());
    }
    let path = dir.path().join("bomb.jpg");
    fs::write(&path, &bomb).unwrap();
    let started = Instant::now();
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("bomb.jpg"), "{err}");
    assert!(started.elapsed().as_secs_f64() < 1.0);
    // Decoding is thread-safe (each decode has its own libjpeg state and error manager).
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                load_rgb(&data("imagenet_sample/images/es_000_n01440764.JPEG")).unwrap()
            })
        })
        .collect();
    let first = load_rgb(&data("imagenet_sample/images/es_000_n01440764.JPEG")).unwrap();
    for h in handles {
        assert_eq!(h.join().unwrap(), first);
    }
}

// ---------------------------------------------------------------- tensors

#[test]
fn tensor_round_trip_is_exact() {
    let img = pattern(32, 24);
    let t = to_tensor(&img, &Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[3, 24, 32]);
    assert_eq!(t.dtype(), DType::F32);
    let v = t.to_vec3::<f32>().unwrap();
    assert_eq!(v[1][2][5], f32::from(img.get_pixel(5, 2)[1]) / 255.0);
    assert_eq!(from_tensor(&t).unwrap(), img);
    assert_eq!(from_tensor(&t.unsqueeze(0).unwrap()).unwrap(), img);
}

#[test]
fn from_tensor_rounds_and_clamps() {
    let values: Vec<f32> = vec![-0.5, 0.0, 0.4 / 255.0, 0.6 / 255.0, 1.0, 2.0];
    let t = Tensor::from_vec(values, (3, 1, 2), &Device::Cpu).unwrap();
    let img = from_tensor(&t).unwrap();
    assert_eq!(*img.get_pixel(0, 0), Rgb([0, 0, 255]));
    assert_eq!(*img.get_pixel(1, 0), Rgb([0, 1, 255]));
}

#[test]
fn from_tensor_rejects_wrong_shapes() {
    for shape in [vec![4, 2, 2], vec![2, 3, 2, 2], vec![3, 4]] {
        let t = Tensor::zeros(shape.clone(), DType::F32, &Device::Cpu).unwrap();
        let err = from_tensor(&t).unwrap_err();
        assert!(err.to_string().contains("C = 1 or 3"), "{shape:?}: {err}");
    }
}

#[test]
fn gray_tensors_become_gray_rgb_images() {
    let t = Tensor::from_vec(vec![0.0f32, 0.5, 1.0, 0.25], (1, 2, 2), &Device::Cpu).unwrap();
    let img = from_tensor(&t).unwrap();
    assert_eq!(*img.get_pixel(1, 0), Rgb([128, 128, 128]));
    assert_eq!(*img.get_pixel(0, 1), Rgb([255, 255, 255]));
}

#[test]
fn gray_models_take_gray_files_and_refuse_colour_ones_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = Preprocess::Resize {
        height: 4,
        width: 4,
    };
    let gray = dir.path().join("gray.png");
    image::GrayImage::from_pixel(8, 8, image::Luma([51]))
        .save(&gray)
        .unwrap();
    let t = blindspot::images::load_for_channels(&gray, &p, 1, &Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[1, 4, 4]);
    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(v.iter().all(|x| (x - 0.2).abs() < 1e-6), "{v:?}");
    // The same gray file for an RGB model: three equal channels, as convert("RGB") gives.
    let rgb = blindspot::images::load_for_channels(&gray, &p, 3, &Device::Cpu).unwrap();
    assert_eq!(rgb.dims(), &[3, 4, 4]);
    let colour = dir.path().join("colour.png");
    image::RgbImage::from_pixel(8, 8, Rgb([200, 10, 10]))
        .save(&colour)
        .unwrap();
    let err = blindspot::images::load_for_channels(&colour, &p, 1, &Device::Cpu).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ImageError::Channels {
                found: 3,
                expected: 1,
                ..
            }
        ) && text.contains("colour.png")
            && text.contains("1-channel"),
        "{text}"
    );
}

#[test]
fn load_for_model_gives_chw_in_unit_range() {
    let path = data("cifar10_test_png/cat/0000.png");
    let p = Preprocess::for_input(32, 32);
    let t = load_for_model(&path, &p, &Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[3, 32, 32]);
    assert_eq!(from_tensor(&t).unwrap(), load_rgb(&path).unwrap());

    let err = load_for_model(Path::new("/nonexistent/x.png"), &p, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.png"), "{err}");
}

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

#[test]
fn cifar_image_folder_lists_1017_images_in_10_classes() {
    let ds = list_dataset(&data("cifar10_test_png")).unwrap();
    let classes = blindspot::models::classes::CIFAR10;
    assert_eq!(ds.images.len(), 1017);
    assert_eq!(
        ds.class_names.as_deref(),
        Some(&classes.map(String::from)[..])
    );
    // Labels agree with the official labels of the same test indices.
    let bytes = fs::read(data("cifar10_test_exact1017.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let labels = st.tensor("labels").unwrap();
    let mut counts = [0usize; 10];
    for item in &ds.images {
        let index: usize = item
            .path
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(item.label, usize::from(labels.data()[index]));
        assert_eq!(item.class_name.as_deref(), Some(classes[item.label]));
        counts[item.label] += 1;
    }
    assert!(counts.iter().all(|&c| c > 0));
    // Within a class, files are sorted by name.
    let first: Vec<_> = ds.images.iter().take(3).map(|i| i.path.clone()).collect();
    assert!(first.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn imagenet_sample_lists_187_images_with_tsv_labels() {
    let ds = list_dataset(&data("imagenet_sample")).unwrap();
    assert_eq!(ds.images.len(), 187);
    assert_eq!(ds.class_names, None);
    let tsv = fs::read_to_string(data("imagenet_sample/labels.tsv")).unwrap();
    for (item, row) in ds.images.iter().zip(tsv.lines().skip(1)) {
        let f: Vec<&str> = row.split('\t').collect();
        assert_eq!(item.path, data("imagenet_sample/images").join(f[0]));
        assert_eq!(item.label, f[1].parse::<usize>().unwrap());
        assert_eq!(item.class_name.as_deref(), Some(f[3]));
        assert!(item.path.is_file());
    }
    // The safetensors labels are the same, in the same order.
    let bytes = fs::read(data("imagenet_sample_224.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let labels: Vec<i64> = st
        .tensor("labels")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let ours: Vec<i64> = ds.images.iter().map(|i| i.label as i64).collect();
    assert_eq!(ours, labels);
}

fn touch_png(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    pattern(2, 2)
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}

#[test]
fn image_folder_skips_hidden_and_non_images_and_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch_png(&root.join("b_dog/2.PNG"));
    touch_png(&root.join("b_dog/1.jpeg"));
    touch_png(&root.join("b_dog/.hidden.png"));
    touch_png(&root.join("b_dog/nested/0.webp"));
    fs::write(root.join("b_dog/readme.txt"), "x").unwrap();
    touch_png(&root.join("a_cat/z.jpg"));
    touch_png(&root.join(".ipynb_checkpoints/x.png"));
    touch_png(&root.join("stray.png"));
    let ds = list_dataset(root).unwrap();
    assert_eq!(
        ds.class_names,
        Some(vec!["a_cat".to_string(), "b_dog".to_string()])
    );
    let listed: Vec<(String, usize)> = ds
        .images
        .iter()
        .map(|i| {
            let rel = i.path.strip_prefix(root).unwrap();
            (rel.to_string_lossy().into_owned(), i.label)
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("a_cat/z.jpg".to_string(), 0),
            ("b_dog/1.jpeg".to_string(), 1),
            ("b_dog/2.PNG".to_string(), 1),
            ("b_dog/nested/0.webp".to_string(), 1),
        ]
    );
}

#[test]
fn image_folder_with_empty_class_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    touch_png(&dir.path().join("a/1.png"));
    fs::create_dir(dir.path().join("b")).unwrap();
    fs::write(dir.path().join("b/notes.txt"), "x").unwrap();
    let err = list_dataset(dir.path()).unwrap_err();
    assert_names_path(&err, &dir.path().join("b"));
}

#[test]
fn empty_dataset_is_an_error_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = list_dataset(dir.path()).unwrap_err();
    assert_names_path(&err, dir.path());
    assert!(err.to_string().contains("empty"), "{err}");

    fs::write(dir.path().join("labels.tsv"), "file\tlabel\n").unwrap();
    let err = list_dataset(dir.path()).unwrap_err();
    assert_names_path(&err, dir.path());

    let missing = dir.path().join("missing");
    let err = list_dataset(&missing).unwrap_err();
    assert_names_path(&err, &missing);
}

#[test]
fn labels_tsv_files_next_to_it_or_in_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch_png(&root.join("a.png"));
    touch_png(&root.join("images/b.png"));
    fs::write(
        root.join("labels.tsv"),
        "source\tlabel\tfile\r\nx\t3\ta.png\r\ny\t0\tb.png\r\n\r\n",
    )
    .unwrap();
    let ds = list_dataset(root).unwrap();
    assert_eq!(ds.images.len(), 2);
    assert_eq!(ds.images[0].path, root.join("a.png"));
    assert_eq!(ds.images[0].label, 3);
    assert_eq!(ds.images[0].class_name, None);
    assert_eq!(ds.images[1].path, root.join("images/b.png"));
    assert_eq!(ds.images[1].label, 0);
}

#[test]
fn labels_tsv_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch_png(&root.join("a.png"));
    let tsv = root.join("labels.tsv");
    let cases = [
        ("file\tclass\na.png\t1\n", 1, "label"),
        ("label\na.png\n", 1, "file"),
        ("file\tlabel\na.png\t1\na.png\tcat\n", 3, "cat"),
        ("file\tlabel\na.png\t-1\n", 2, "-1"),
        ("file\tlabel\na.png\n", 2, "fields"),
        ("file\tlabel\nmissing.png\t1\n", 2, "missing.png"),
        ("", 1, "empty"),
    ];
    for (text, line, needle) in cases {
        fs::write(&tsv, text).unwrap();
        let err = list_dataset(root).unwrap_err();
        let msg = err.to_string();
        assert_names_path(&err, &tsv);
        assert!(msg.contains(&format!("line {line}")), "{text:?}: {msg}");
        assert!(msg.contains(needle), "{text:?}: {msg}");
    }
}
