//! Resizing and cropping, bit-exact with Pillow and torchvision.
//!
//! Models are evaluated on what PyTorch's pipeline feeds them: `Image.resize(size, BILINEAR)` and
//! torchvision's `Resize` / `CenterCrop` on top of it. `image::imageops::resize` with the triangle
//! filter computes a similar average but rounds differently: on the ImageNet sample it is off by
//! 0.16 levels on average where this port is exact. Small for accuracy, but blind-spot analyses
//! compare pixels and gradients against PyTorch, so this file ports Pillow's `Resample.c`
//! (antialiased bilinear, 8-bit fixed-point path, Pillow 13's choice of pass order) instead.

use std::ops::Range;

use image::RgbImage;

use super::Preprocess;

/// Pillow's fixed-point precision for 8-bit images: `32 - 8 - 2` bits, which leaves room for
/// 8-bit samples and a sum of weights slightly above 1 in an `i32` accumulator.
const PRECISION_BITS: u32 = 22;

/// Resampling weights for one axis, for output indices in a window of the full output.
struct Kernel {
    /// For each output index of the window: first input index and number of taps.
    bounds: Vec<(usize, usize)>,
    /// Taps per output index in `weights` (the maximum over all output indices).
    ksize: usize,
    /// `bounds.len() * ksize` fixed-point weights; unused taps are zero.
    weights: Vec<i32>,
}

impl Kernel {
    /// Pillow's `precompute_coeffs` for the bilinear filter followed by
    /// `normalize_coeffs_8bpc`, evaluated only for the output indices in `window`. Every
    /// expression keeps Pillow's order of floating-point operations so that the rounded integer
    /// weights come out identical.
    fn bilinear(in_size: usize, out_size: usize, window: Range<usize>) -> Kernel {
        let scale = in_size as f64 / out_size as f64;
        // Antialiasing: when shrinking, the triangle is widened to cover `scale` input pixels so
        // that every input pixel contributes; when enlarging it stays one pixel wide.
        let filterscale = scale.max(1.0);
        let support = filterscale; // bilinear support (1.0) times filterscale
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(window.len());
        let mut weights = vec![0i32; window.len() * ksize];
        let mut taps = vec![0f64; ksize];
        for (i, xx) in window.enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C `(int)` truncates toward zero; `as i64` does the same.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let n = ((xmax - xmin).max(0) as usize).min(ksize);
            let mut ww = 0.0;
            for (x, tap) in taps.iter_mut().enumerate().take(n) {
                let w = triangle(((x as i64 + xmin) as f64 - center + 0.5) * ss);
                *tap = w;
                ww += w;
            }
            let row = &mut weights[i * ksize..i * ksize + n];
            for (dst, &tap) in row.iter_mut().zip(&taps[..n]) {
                let k = if ww != 0.0 { tap / ww } else { tap };
                let fixed = k * f64::from(1u32 << PRECISION_BITS);
                // Rounds half away from zero, as Pillow's `(int)(x +/- 0.5)` does.
                *dst = if k < 0.0 {
                    (-0.5 + fixed) as i32
                } else {
                    (0.5 + fixed) as i32
                };
            }
            bounds.push((xmin as usize, n));
        }
        Kernel {
            bounds,
            ksize,
            weights,
        }
    }

    /// Input indices the window's outputs read, from the first to one past the last.
    fn span(&self) -> Range<usize> {
        let lo = self.bounds.iter().map(|b| b.0).min().unwrap_or(0);
        let hi = self.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(0);
        lo..hi.max(lo)
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (first, n) = self.bounds[i];
        (first, &self.weights[i * self.ksize..i * self.ksize + n])
    }
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Pillow's `clip8`: drops the fixed-point fraction (the accumulator starts at one half, so this
/// rounds to nearest) and saturates to 0..=255.
fn clip8(acc: i64) -> u8 {
    if acc >= 1 << (PRECISION_BITS + 8) {
        255
    } else if acc <= 0 {
        0
    } else {
        (acc >> PRECISION_BITS) as u8
    }
}

const HALF: i64 = 1 << (PRECISION_BITS - 1);

/// Bilinear resize to `width` x `height` with antialiasing, bit-exact with Pillow's
/// `Image.resize((width, height), Image.BILINEAR)` on an RGB image.
///
/// An image that already has that size is returned unchanged (Pillow copies it too).
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize_window(img, width, height, 0..width, 0..height)
}

/// The part `win_x` x `win_y` of `img` resized to `out_w` x `out_h`.
///
/// Each output pixel depends only on its own weights, so computing just the window gives exactly
/// the pixels a full resize followed by a crop would, without materialising the full resize (for
/// a very elongated image, torchvision's shorter-side resize can be huge before the crop).
fn resize_window(
    img: &RgbImage,
    out_w: u32,
    out_h: u32,
    win_x: Range<u32>,
    win_y: Range<u32>,
) -> RgbImage {
    let (w, h) = (win_x.len() as u32, win_y.len() as u32);
    if w == 0 || h == 0 {
        return RgbImage::new(w, h);
    }
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let (out_w, out_h) = (out_w as usize, out_h as usize);
    let win_x = win_x.start as usize..win_x.end as usize;
    let win_y = win_y.start as usize..win_y.end as usize;
    let src = img.as_raw();

    // Like Pillow, an axis whose size does not change is not resampled at all.
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let out = match (need_h, need_v) {
        (false, false) => crop(src, in_w, win_x, win_y),
        (true, false) => {
            let kh = Kernel::bilinear(in_w, out_w, win_x);
            horizontal(src, in_w, win_y, &kh, 0)
        }
        (false, true) => {
            let kv = Kernel::bilinear(in_h, out_h, win_y);
            vertical(src, in_w, win_x, &kv, 0)
        }
        (true, true) => {
            let kh = Kernel::bilinear(in_w, out_w, win_x.clone());
            let kv = Kernel::bilinear(in_h, out_h, win_y.clone());
            // Both passes round to 8 bits, so their order changes the result by a level here and
            // there. Pillow >= 13 (python-pillow/Pillow#9549) runs the vertical pass first when
            // the height shrinks by more than twice as many pixels as the width; earlier versions
            // always ran the horizontal pass first. We follow Pillow 13, which made the
            // reference data (checked: with horizontal-first, one of its 187 images differs).
            let dh = in_h as i64 - out_h as i64;
            let dw = in_w as i64 - out_w as i64;
            if dh > 0 && dh > 2 * dw {
                let cols = kh.span();
                let tmp = vertical(src, in_w, cols.clone(), &kv, 0);
                horizontal(&tmp, cols.len(), 0..win_y.len(), &kh, cols.start)
            } else {
                let rows = kv.span();
                let tmp = horizontal(src, in_w, rows.clone(), &kh, 0);
                vertical(&tmp, win_x.len(), 0..win_x.len(), &kv, rows.start)
            }
        }
    };
    // The buffer has exactly w * h * 3 bytes by construction; the fallback is never taken.
    RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
}

/// Rows `rows` and columns `cols` of an RGB buffer `stride` pixels wide.
fn crop(src: &[u8], stride: usize, cols: Range<usize>, rows: Range<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * cols.len() * 3);
    for y in rows {
        out.extend_from_slice(&src[(y * stride + cols.start) * 3..(y * stride + cols.end) * 3]);
    }
    out
}

/// Pillow's `ImagingResampleHorizontal_8bpc` on rows `rows` of an RGB buffer `stride` pixels
/// wide whose column 0 is column `col_shift` of the image the kernel was made for.
fn horizontal(
    src: &[u8],
    stride: usize,
    rows: Range<usize>,
    k: &Kernel,
    col_shift: usize,
) -> Vec<u8> {
    let out_w = k.bounds.len();
    let mut out = vec![0u8; rows.len() * out_w * 3];
    for (dst_row, y) in out.chunks_exact_mut(out_w * 3).zip(rows) {
        let src_row = &src[y * stride * 3..(y + 1) * stride * 3];
        for (i, dst) in dst_row.chunks_exact_mut(3).enumerate() {
            let (first, taps) = k.taps(i);
            let first = first - col_shift;
            let mut acc = [HALF; 3];
            let span = &src_row[first * 3..(first + taps.len()) * 3];
            for (px, &w) in span.chunks_exact(3).zip(taps) {
                for c in 0..3 {
                    acc[c] += i64::from(px[c]) * i64::from(w);
                }
            }
            for c in 0..3 {
                dst[c] = clip8(acc[c]);
            }
        }
    }
    out
}

/// Pillow's `ImagingResampleVertical_8bpc` on columns `cols` of an RGB buffer `stride` pixels
/// wide whose row 0 is row `row_shift` of the image the kernel was made for.
fn vertical(
    src: &[u8],
    stride: usize,
    cols: Range<usize>,
    k: &Kernel,
    row_shift: usize,
) -> Vec<u8> {
    let row_bytes = cols.len() * 3;
    let mut out = vec![0u8; k.bounds.len() * row_bytes];
    for (j, dst_row) in out.chunks_exact_mut(row_bytes).enumerate() {
        let (first, taps) = k.taps(j);
        let first = first - row_shift;
        for (b, dst) in dst_row.iter_mut().enumerate() {
            // Byte offset of this sample within a source row; channels are independent.
            let x = cols.start * 3 + b;
            let mut acc = HALF;
            for (t, &w) in taps.iter().enumerate() {
                acc += i64::from(src[(first + t) * stride * 3 + x]) * i64::from(w);
            }
            *dst = clip8(acc);
        }
    }
    out
}

/// Brings `img` to a model's input size as `p` says, bit-exact with Pillow + torchvision.
///
/// - [`Preprocess::Resize`]: `Image.resize((width, height), BILINEAR)`.
/// - [`Preprocess::ResizeShorterCenterCrop`]: torchvision `Resize(resize)` (bilinear,
///   antialiased) then `CenterCrop((height, width))`, including torchvision's zero padding when
///   the crop is larger than the resized image.
///
/// An image with no pixels gives a black image of the output size, since there is nothing to
/// resample (decoders never produce one; this only keeps the function total).
pub fn preprocess(img: &RgbImage, p: &Preprocess) -> RgbImage {
    let (out_h, out_w) = p.output_size();
    if img.width() == 0 || img.height() == 0 {
        return RgbImage::new(out_w, out_h);
    }
    match *p {
        Preprocess::Resize { height, width } => resize_bilinear(img, width, height),
        Preprocess::ResizeShorterCenterCrop {
            resize,
            height,
            width,
        } => {
            let (rw, rh) = shorter_side_size(img.width(), img.height(), resize);
            let (x0, y0) = (crop_start(rw, width), crop_start(rh, height));
            // The part of the crop that lies inside the resized image; the rest is padding.
            let wx = x0.max(0)..(x0 + i64::from(width)).min(i64::from(rw));
            let wy = y0.max(0)..(y0 + i64::from(height)).min(i64::from(rh));
            let mut out = RgbImage::new(width, height);
            if wx.is_empty() || wy.is_empty() {
                return out;
            }
            let (px, py) = ((wx.start - x0) as u32, (wy.start - y0) as u32);
            let part = resize_window(
                img,
                rw,
                rh,
                wx.start as u32..wx.end as u32,
                wy.start as u32..wy.end as u32,
            );
            if part.dimensions() == (width, height) {
                return part;
            }
            for (x, y, px_val) in part.enumerate_pixels() {
                out.put_pixel(x + px, y + py, *px_val);
            }
            out
        }
    }
}

/// torchvision's `_compute_resized_output_size` for an integer size: the shorter side becomes
/// `resize`, the longer `int(resize * long / short)` (Python's true division, then truncation).
/// Returns (width, height).
fn shorter_side_size(w: u32, h: u32, resize: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    // `resize * long` is exact in f64 and the division is correctly rounded, as in Python.
    let new_long = (f64::from(resize) * f64::from(long) / f64::from(short)) as u32;
    if w <= h {
        (resize, new_long)
    } else {
        (new_long, resize)
    }
}

/// torchvision `center_crop`'s offset along one axis, in the resized image's coordinates:
/// `int(round((size - crop) / 2.0))` with Python's round-half-to-even, or minus the left/top
/// padding `(crop - size) // 2` when the crop is larger than the image.
fn crop_start(size: u32, crop: u32) -> i64 {
    if crop > size {
        return -i64::from((crop - size) / 2);
    }
    let d = size - crop;
    let half = d / 2;
    // d odd means (d / 2.0) ends in .5, which Python rounds to the even neighbour.
    if d % 2 == 1 && half % 2 == 1 {
        i64::from(half + 1)
    } else {
        i64::from(half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_start_rounds_half_to_even_like_python() {
        // (257 - 224) / 2 = 16.5 -> 16; (259 - 224) / 2 = 17.5 -> 18.
        assert_eq!(crop_start(257, 224), 16);
        assert_eq!(crop_start(259, 224), 18);
        assert_eq!(crop_start(256, 224), 16);
        assert_eq!(crop_start(224, 224), 0);
        // Padding: torchvision pads (crop - size) // 2 on the left/top.
        assert_eq!(crop_start(200, 224), -12);
        assert_eq!(crop_start(201, 224), -11);
    }

    #[test]
    fn shorter_side_matches_torchvision() {
        // 500x375 (w x h) -> shorter side 256, longer int(256 * 500 / 375) = 341.
        assert_eq!(shorter_side_size(500, 375, 256), (341, 256));
        assert_eq!(shorter_side_size(375, 500, 256), (256, 341));
        assert_eq!(shorter_side_size(512, 512, 256), (256, 256));
    }

    #[test]
    fn kernel_weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(500usize, 256usize), (10, 37), (341, 224), (7, 7)] {
            let k = Kernel::bilinear(i, o, 0..o);
            for j in 0..o {
                let s: i64 = k.taps(j).1.iter().map(|&w| i64::from(w)).sum();
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= k.ksize as i64,
                    "{i}->{o} at {j}"
                );
            }
        }
    }

    #[test]
    fn windowed_resize_equals_full_resize_then_crop() {
        let img = RgbImage::from_fn(37, 61, |x, y| {
            image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (255 - x * 5) as u8])
        });
        // Horizontal first, vertical first, one axis only, upscaling.
        for (w, h) in [(50, 11), (30, 20), (37, 20), (20, 61), (80, 90)] {
            let full = resize_bilinear(&img, w, h);
            let (x0, y0) = (w / 5, h / 4);
            let part = resize_window(&img, w, h, x0..w - 1, y0..h - h / 5);
            assert_eq!(part.dimensions(), (w - 1 - x0, h - h / 5 - y0));
            for (x, y, p) in part.enumerate_pixels() {
                assert_eq!(p, full.get_pixel(x + x0, y + y0), "{w}x{h} at {x},{y}");
            }
        }
    }
}
