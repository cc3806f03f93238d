//! Pixel work: display sizes, resampling, PNG encoding, base64.

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage, RgbaImage};

use super::FigureError;

/// Display size of a `w`×`h` image in a square box of `box_px` pixels (see `Canvas::image`).
pub(crate) fn fit_size(w: u32, h: u32, box_px: u32) -> (u32, u32) {
    let m = w.max(h).max(1);
    if box_px >= 2 * m {
        let k = box_px / m;
        (w * k, h * k)
    } else {
        let f = box_px as f64 / m as f64;
        (
            ((w as f64 * f).round() as u32).clamp(1, box_px),
            ((h as f64 * f).round() as u32).clamp(1, box_px),
        )
    }
}

/// `img` at `dw`×`dh`: nearest neighbour when growing, area average when shrinking.
pub(crate) fn resize_for_display(img: &RgbImage, dw: u32, dh: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if (dw, dh) == (w, h) {
        return img.clone();
    }
    if dw >= w && dh >= h {
        // Nearest neighbour with the source pixel under each destination pixel's centre; for a
        // whole-number factor k this is exactly k×k blocks.
        RgbImage::from_fn(dw, dh, |x, y| {
            let sx = (((x as u64 * 2 + 1) * w as u64) / (dw as u64 * 2)) as u32;
            let sy = (((y as u64 * 2 + 1) * h as u64) / (dh as u64 * 2)) as u32;
            *img.get_pixel(sx.min(w - 1), sy.min(h - 1))
        })
    } else {
        area_average(img, dw, dh)
    }
}

/// Box-filter downscale: each destination pixel is the coverage-weighted mean of the source
/// pixels under it, so thin structures fade instead of vanishing or aliasing.
fn area_average(img: &RgbImage, dw: u32, dh: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let fx = w as f64 / dw as f64;
    let fy = h as f64 / dh as f64;
    RgbImage::from_fn(dw, dh, |x, y| {
        let (x0, x1) = (x as f64 * fx, (x + 1) as f64 * fx);
        let (y0, y1) = (y as f64 * fy, (y + 1) as f64 * fy);
        let mut acc = [0f64; 3];
        let mut total = 0f64;
        let mut sy = y0.floor() as u32;
        while (sy as f64) < y1 && sy < h {
            let wy = (y1.min(sy as f64 + 1.0) - y0.max(sy as f64)).max(0.0);
            let mut sx = x0.floor() as u32;
            while (sx as f64) < x1 && sx < w {
                let wx = (x1.min(sx as f64 + 1.0) - x0.max(sx as f64)).max(0.0);
                let p = img.get_pixel(sx, sy);
                for c in 0..3 {
                    acc[c] += p[c] as f64 * wx * wy;
                }
                total += wx * wy;
                sx += 1;
            }
            sy += 1;
        }
        let total = total.max(f64::MIN_POSITIVE);
        image::Rgb(acc.map(|a| (a / total).round().clamp(0.0, 255.0) as u8))
    })
}

pub(crate) fn encode_png_rgb(img: &RgbImage) -> Result<Vec<u8>, FigureError> {
    encode_png(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    )
}

pub(crate) fn encode_png_rgba(img: &RgbaImage) -> Result<Vec<u8>, FigureError> {
    encode_png(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgba8,
    )
}

pub(crate) fn encode_png(
    raw: &[u8],
    w: u32,
    h: u32,
    kind: ExtendedColorType,
) -> Result<Vec<u8>, FigureError> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(raw, w, h, kind)
        .map_err(|e| FigureError::Encode(e.to_string()))?;
    Ok(out)
}

/// Standard base64 with padding (RFC 4648 §4). Twenty lines here instead of a dependency for
/// the one place it is needed: data URIs of images embedded in SVG.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn small_images_grow_by_whole_factors() {
        assert_eq!(fit_size(32, 32, 96), (96, 96));
        assert_eq!(fit_size(32, 32, 100), (96, 96));
        assert_eq!(fit_size(28, 28, 96), (84, 84));
        assert_eq!(fit_size(32, 16, 96), (96, 48));
        // Between 1x and 2x the box is filled.
        assert_eq!(fit_size(224, 224, 288), (288, 288));
        // Larger images shrink to the box.
        assert_eq!(fit_size(224, 112, 96), (96, 48));
    }

    #[test]
    fn nearest_neighbour_makes_exact_blocks() {
        let img = RgbImage::from_fn(2, 2, |x, y| {
            image::Rgb([(x * 100) as u8, (y * 100) as u8, 7])
        });
        let big = resize_for_display(&img, 6, 6);
        for y in 0..6 {
            for x in 0..6 {
                assert_eq!(
                    big.get_pixel(x, y),
                    img.get_pixel(x / 3, y / 3),
                    "({x},{y})"
                );
            }
        }
    }

    #[test]
    fn area_average_keeps_the_mean() {
        let img = RgbImage::from_fn(4, 4, |x, _| {
            image::Rgb([if x % 2 == 0 { 0 } else { 200 }; 3])
        });
        let small = resize_for_display(&img, 2, 2);
        assert!(small.pixels().all(|p| p[0] == 100));
    }
}
