//! Deterministic synthetic shapes: ten classes a person names at a glance.
//!
//! The offline demo trains small classifiers on these images so it can show a blind spot
//! without downloading anything ("a circle that has visibly become a star is still a circle
//! to the model"). That finding only persuades if a person can check it by eye, so every
//! class is a plain, well-known shape, and everything that is *not* shape (colours, size,
//! position, rotation, background texture, noise) is randomised so a classifier has to learn
//! the shape itself.
//!
//! This module is a leaf: it depends on nothing else of ours.
//!
//! # Determinism
//!
//! Image `index` of dataset `seed` is a pure function of `(seed, index, size)`: its random
//! numbers come from a Xoshiro256** generator whose 256-bit state is derived from `seed`
//! and `index` alone by SplitMix64 mixing. Any image can be regenerated on its own, in any
//! order, on any machine. The rendering uses only `+ - * /`, `sqrt`, `floor` and `round`,
//! which IEEE 754 defines exactly, and Rust never fuses multiply-adds on its own; sine and
//! cosine come from our own Taylor series rather than the platform's libm (whose last bit
//! may differ between C libraries), and the Gaussian-ish noise is an Irwin-Hall sum instead
//! of Box-Muller (which would need `ln` and `cos`). So the bytes are identical everywhere,
//! which `dataset_fingerprint` lets CI check.
//!
//! # Labels
//!
//! The label of image `index` is `index % 10` (see [`label_of`]): classes are exactly
//! balanced over any 10 consecutive images, and a label is known without rendering.
//! Training code is expected to shuffle.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use image::{ImageFormat, Rgb, RgbImage};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256StarStar;
use sha2::{Digest, Sha256};

/// The class names; a label is an index into this array.
pub const CLASSES: [&str; 10] = [
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "heart",
    "crescent",
    "stripes",
    "checkerboard",
];

/// The side of the images the demo trains on.
pub const DEFAULT_SIZE: u32 = 32;
/// Smallest side at which every class is still recognisable (thin rings and crescents
/// blur into blobs below it).
pub const MIN_SIZE: u32 = 16;
/// Largest side we support for writing datasets; bigger only costs disk and time.
pub const MAX_SIZE: u32 = 128;

/// Smallest luminance difference between foreground and background colours, so the shape
/// is always visible even after the background gradient and noise eat into it.
const MIN_CONTRAST: f64 = 0.3;
/// Gallery images must be at least this contrasted: they are what a person looks at.
const GALLERY_MIN_CONTRAST: f64 = 0.45;
/// Mixed into the seed for the gallery stream, so gallery images are not training images.
const GALLERY_SALT: u64 = 0x6761_6c6c_6572_7921; // "gallery!"

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("image size {0} is outside the supported {MIN_SIZE}..={MAX_SIZE}")]
    InvalidSize(u32),
    #[error("{path}: cannot write: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot encode PNG: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

/// The label of image `index` in every dataset: `index % 10`.
pub fn label_of(index: u64) -> usize {
    (index % CLASSES.len() as u64) as usize
}

/// Renders image `index` of dataset `seed` at `size` x `size` and returns it with its label.
///
/// Pure in `(seed, index, size)`. Any `size` renders; classes are designed to be
/// recognisable within [`MIN_SIZE`]`..=`[`MAX_SIZE`].
pub fn generate(seed: u64, index: u64, size: u32) -> (RgbImage, usize) {
    let mut rng = image_rng(seed, index);
    let scene = Scene::sample(&mut rng, label_of(index), size);
    (scene.render(&mut rng, size), scene.label)
}

/// Writes images `0..count` as an ImageFolder tree: `dir/<class>/<index:05>.png`, plus
/// `dir/labels.tsv` (`file\tlabel`, one row per image).
///
/// ImageFolder readers sort class folders alphabetically, which scrambles our label order;
/// `labels.tsv` keeps it, and our dataset reader prefers it when present. Each file is
/// written under a temporary name and renamed, so an interrupted run never leaves a
/// truncated PNG under a real name. Files from an earlier, larger run are not removed, but
/// `labels.tsv` lists exactly this run's images. `progress` gets the number written so far.
pub fn write_dataset(
    dir: &Path,
    seed: u64,
    count: usize,
    size: u32,
    mut progress: impl FnMut(usize),
) -> Result<(), DemoError> {
    check_size(size)?;
    for class in CLASSES {
        create_dir(&dir.join(class))?;
    }
    let mut tsv = String::from("file\tlabel\n");
    for i in 0..count {
        let (img, label) = generate(seed, i as u64, size);
        let rel = format!("{}/{i:05}.png", CLASSES[label]);
        write_png_atomically(&img, &dir.join(&rel))?;
        // Writing to a String cannot fail.
        let _ = writeln!(tsv, "{rel}\t{label}");
        progress(i + 1);
    }
    write_atomically(&dir.join("labels.tsv"), tsv.as_bytes())
}

/// Writes `per_class` clearly drawn examples of every class as `dir/<class>_<n>.png`
/// (`n` from 1) and returns their paths, class by class.
///
/// They come from a stream separate from the dataset of the same `seed`, so the gallery
/// never shows training images. Within it, images with low contrast, heavy noise or a small
/// shape are skipped (deterministically), because the gallery is what a person looks at.
pub fn write_gallery(
    dir: &Path,
    seed: u64,
    per_class: usize,
    size: u32,
) -> Result<Vec<PathBuf>, DemoError> {
    check_size(size)?;
    create_dir(dir)?;
    let gallery_seed = splitmix64_mix(seed ^ GALLERY_SALT);
    let mut written = Vec::with_capacity(per_class * CLASSES.len());
    for (label, class) in CLASSES.iter().enumerate() {
        // Candidates of this class are the indices congruent to `label`. The criteria pass
        // roughly a third of them; the cap only guards against a hang if they are tightened.
        let mut candidates = (0u64..).map(|k| k * CLASSES.len() as u64 + label as u64);
        for n in 1..=per_class {
            let mut chosen = None;
            for _ in 0..64 {
                let Some(index) = candidates.next() else {
                    break;
                };
                let mut rng = image_rng(gallery_seed, index);
                let scene = Scene::sample(&mut rng, label, size);
                chosen = Some((scene.render(&mut rng, size), scene.is_clear()));
                if scene.is_clear() {
                    break;
                }
            }
            if let Some((img, _)) = chosen {
                let path = dir.join(format!("{class}_{n}.png"));
                write_png_atomically(&img, &path)?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// Hex SHA-256 over images `0..count` of dataset `seed`: for each image, its label as one
/// byte followed by its raw row-major RGB bytes. CI compares it across machines and runs.
pub fn dataset_fingerprint(seed: u64, count: usize, size: u32) -> String {
    let mut hasher = Sha256::new();
    for i in 0..count {
        let (img, label) = generate(seed, i as u64, size);
        hasher.update([label as u8]);
        hasher.update(img.as_raw());
    }
    hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn check_size(size: u32) -> Result<(), DemoError> {
    if (MIN_SIZE..=MAX_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(DemoError::InvalidSize(size))
    }
}

fn create_dir(dir: &Path) -> Result<(), DemoError> {
    fs::create_dir_all(dir).map_err(|source| DemoError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_png_atomically(img: &RgbImage, path: &Path) -> Result<(), DemoError> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png)
        .map_err(|source| DemoError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    write_atomically(path, bytes.get_ref())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DemoError> {
    crate::atomic::write(path, bytes).map_err(|source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------------------
// Randomness

/// SplitMix64's output function: a bijection on u64 that scrambles every input bit.
fn splitmix64_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator of one image. Seed and index are mixed (rather than, say, jumping one
/// stream) so image `i` costs the same to reach as image 0.
fn image_rng(seed: u64, index: u64) -> Xoshiro256StarStar {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut state = splitmix64_mix(splitmix64_mix(seed) ^ index.wrapping_mul(GAMMA));
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        state = state.wrapping_add(GAMMA);
        chunk.copy_from_slice(&splitmix64_mix(state).to_le_bytes());
    }
    Xoshiro256StarStar::from_seed(bytes)
}

/// Uniform in [0, 1) from the top 53 bits, exactly representable.
fn unit(rng: &mut Xoshiro256StarStar) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn uniform(rng: &mut Xoshiro256StarStar, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(rng)
}

/// Zero-mean, unit-variance, bell-shaped: the sum of four uniforms (Irwin-Hall). Not exactly
/// Gaussian, but indistinguishable as pixel noise and needs no libm.
fn gaussianish(rng: &mut Xoshiro256StarStar) -> f64 {
    let s = unit(rng) + unit(rng) + unit(rng) + unit(rng);
    (s - 2.0) * 1.732_050_807_568_877_2 // sqrt(12 / 4)
}

/// `(sin, cos)` of `turns` full turns, by Taylor series on [-pi, pi], so the result does not
/// depend on the platform's libm.
fn sin_cos_turns(turns: f64) -> (f64, f64) {
    let x = (turns - turns.round()) * std::f64::consts::TAU;
    let x2 = x * x;
    let (mut s, mut s_term) = (x, x);
    let (mut c, mut c_term) = (1.0, 1.0);
    // At |x| = pi the 15th terms are below 1e-17, under f64 resolution.
    for k in 1..=15 {
        let k = f64::from(k);
        s_term *= -x2 / ((2.0 * k) * (2.0 * k + 1.0));
        c_term *= -x2 / ((2.0 * k - 1.0) * (2.0 * k));
        s += s_term;
        c += c_term;
    }
    (s, c)
}

// ---------------------------------------------------------------------------------------
// Colours

type Rgb3 = [f64; 3];

/// Luma from non-linear RGB (Rec. 709 weights). A visibility heuristic, not colorimetry.
fn luma(c: Rgb3) -> f64 {
    0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
}

fn hsv(h: f64, s: f64, v: f64) -> Rgb3 {
    let h6 = h * 6.0;
    let sector = h6.floor();
    let f = h6 - sector;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match sector as i64 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// One colour from the distribution both foreground and background are drawn from:
/// any hue, any saturation, mostly not-black values.
fn random_colour(rng: &mut Xoshiro256StarStar) -> Rgb3 {
    let h = unit(rng);
    let s = unit(rng);
    let v = uniform(rng, 0.06, 1.0);
    hsv(h, s, v)
}

/// Foreground and background colours with at least `MIN_CONTRAST` luma between them.
///
/// Rejection keeps the pair exchangeable (the condition is symmetric in the two), so the
/// foreground's colour distribution equals the background's and a class, whatever its
/// area, has the same expected mean colour as every other.
fn colour_pair(rng: &mut Xoshiro256StarStar) -> (Rgb3, Rgb3) {
    // Roughly half of all pairs pass; 256 failures in a row is astronomically unlikely,
    // and the fallback is itself symmetric.
    for _ in 0..256 {
        let a = random_colour(rng);
        let b = random_colour(rng);
        if (luma(a) - luma(b)).abs() >= MIN_CONTRAST {
            return (a, b);
        }
    }
    if unit(rng) < 0.5 {
        ([0.0; 3], [1.0; 3])
    } else {
        ([1.0; 3], [0.0; 3])
    }
}

/// How a colour varies over the image, so the background is not always flat.
enum Texture {
    Flat,
    /// `delta` per channel across one image side along direction `(dx, dy)`.
    Linear {
        dx: f64,
        dy: f64,
        delta: Rgb3,
    },
    /// Faint smooth brightness mottling: value noise on a `NOISE_CELLS`-cell lattice.
    Mottled {
        lattice: Vec<f64>,
        amplitude: f64,
    },
}

const NOISE_CELLS: usize = 4;

impl Texture {
    fn linear(rng: &mut Xoshiro256StarStar, max_delta: f64) -> Self {
        let (dy, dx) = sin_cos_turns(unit(rng));
        let delta = [0; 3].map(|_| uniform(rng, -max_delta, max_delta));
        Texture::Linear { dx, dy, delta }
    }

    fn background(rng: &mut Xoshiro256StarStar) -> Self {
        let kind = unit(rng);
        if kind < 0.3 {
            Texture::Flat
        } else if kind < 0.7 {
            Texture::linear(rng, 0.08)
        } else {
            let n = NOISE_CELLS + 1;
            let lattice = (0..n * n).map(|_| uniform(rng, -1.0, 1.0)).collect();
            Texture::Mottled {
                lattice,
                amplitude: uniform(rng, 0.02, 0.06),
            }
        }
    }

    fn foreground(rng: &mut Xoshiro256StarStar) -> Self {
        // A little shading on the shape too, so "perfectly flat" is not a foreground cue.
        if unit(rng) < 0.5 {
            Texture::Flat
        } else {
            Texture::linear(rng, 0.05)
        }
    }

    /// The colour offset at `(u, v)`, image coordinates scaled to [0, 1].
    fn offset(&self, u: f64, v: f64) -> Rgb3 {
        match self {
            Texture::Flat => [0.0; 3],
            Texture::Linear { dx, dy, delta } => {
                let t = (u - 0.5) * dx + (v - 0.5) * dy;
                delta.map(|d| d * t)
            }
            Texture::Mottled { lattice, amplitude } => {
                let n = NOISE_CELLS + 1;
                let fx = (u * NOISE_CELLS as f64).clamp(0.0, NOISE_CELLS as f64);
                let fy = (v * NOISE_CELLS as f64).clamp(0.0, NOISE_CELLS as f64);
                let ix = (fx.floor() as usize).min(NOISE_CELLS - 1);
                let iy = (fy.floor() as usize).min(NOISE_CELLS - 1);
                let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
                let (tx, ty) = (smooth(fx - ix as f64), smooth(fy - iy as f64));
                let at = |x: usize, y: usize| lattice[y * n + x];
                let top = at(ix, iy) + (at(ix + 1, iy) - at(ix, iy)) * tx;
                let bottom = at(ix, iy + 1) + (at(ix + 1, iy + 1) - at(ix, iy + 1)) * tx;
                let value = (top + (bottom - top) * ty) * amplitude;
                [value; 3]
            }
        }
    }
}

struct Paint {
    base: Rgb3,
    texture: Texture,
}

impl Paint {
    fn at(&self, u: f64, v: f64) -> Rgb3 {
        let o = self.texture.offset(u, v);
        [
            self.base[0] + o[0],
            self.base[1] + o[1],
            self.base[2] + o[2],
        ]
    }
}

// ---------------------------------------------------------------------------------------
// Shapes, as signed distance functions
//
// Shapes live in local coordinates, y up, inside the unit circle, so one placement rule
// (scale, jitter, rotation) keeps every shape in frame. Distances are negative inside;
// multiplied by the scale they are in pixels, and coverage `0.5 - d` clamped to [0, 1] is
// the usual analytic anti-aliasing (a one-pixel box filter across a straight edge).
// Several functions are the exact ones from Inigo Quilez's catalogue
// (https://iquilezles.org/articles/distfunctions2d/); unions and differences via min/max
// are exact outside and near edges, which is all anti-aliasing needs.

fn length(x: f64, y: f64) -> f64 {
    (x * x + y * y).sqrt()
}

fn sd_box(x: f64, y: f64, bx: f64, by: f64) -> f64 {
    let (qx, qy) = (x.abs() - bx, y.abs() - by);
    length(qx.max(0.0), qy.max(0.0)) + qx.max(qy).min(0.0)
}

fn sd_round_box(x: f64, y: f64, half: f64, radius: f64) -> f64 {
    sd_box(x, y, half - radius, half - radius) - radius
}

/// Equilateral triangle, centroid at the origin, one vertex up, circumradius 1.
fn sd_triangle(x: f64, y: f64) -> f64 {
    const K: f64 = 1.732_050_807_568_877_2; // sqrt(3)
    const R: f64 = K / 2.0; // half the side, for circumradius 1
    let mut px = x.abs() - R;
    let mut py = y + R / K;
    if px + K * py > 0.0 {
        (px, py) = ((px - K * py) / 2.0, (-K * px - py) / 2.0);
    }
    px -= px.clamp(-2.0 * R, 0.0);
    let d = length(px, py);
    if py > 0.0 { -d } else { d }
}

/// Five-pointed star, one point up, outer radius 1, inner radius `inner`.
fn sd_star5(x: f64, y: f64, inner: f64) -> f64 {
    // cos and sin of 36 degrees: the star's half-angle between point and notch.
    const K1X: f64 = 0.809_016_994_374_947_4;
    const K1Y: f64 = -0.587_785_252_292_473_1;
    let (k2x, k2y) = (-K1X, K1Y);
    let (mut px, mut py) = (x.abs(), y);
    let t = 2.0 * (K1X * px + K1Y * py).max(0.0);
    (px, py) = (px - t * K1X, py - t * K1Y);
    let t = 2.0 * (k2x * px + k2y * py).max(0.0);
    (px, py) = (px - t * k2x, py - t * k2y);
    px = px.abs();
    py -= 1.0;
    let (bax, bay) = (inner * -K1Y, inner * K1X - 1.0);
    let h = ((px * bax + py * bay) / (bax * bax + bay * bay)).clamp(0.0, 1.0);
    let d = length(px - bax * h, py - bay * h);
    if py * bax - px * bay > 0.0 { d } else { -d }
}

/// Plus sign with arms of half-width `half_width` reaching the unit circle.
fn sd_cross(x: f64, y: f64, half_width: f64) -> f64 {
    let arm = (1.0 - half_width * half_width).sqrt();
    sd_box(x, y, arm, half_width).min(sd_box(x, y, half_width, arm))
}

/// Heart, upright, fitted into the unit circle.
fn sd_heart(x: f64, y: f64) -> f64 {
    // Quilez's heart has its tip at the origin, lobes up to y = 1.10 and x = +-0.60. Around
    // (0, 0.62) it fits a circle of radius 0.635 (tip 0.62 away, lobe tops 0.635).
    const FIT: f64 = 0.635;
    const CENTRE_Y: f64 = 0.62;
    let px = (x * FIT).abs();
    let py = y * FIT + CENTRE_Y;
    let d = if px + py > 1.0 {
        length(px - 0.25, py - 0.75) - std::f64::consts::SQRT_2 / 4.0
    } else {
        let m = 0.5 * (px + py).max(0.0);
        let d2 = (px * px + (py - 1.0) * (py - 1.0)).min((px - m) * (px - m) + (py - m) * (py - m));
        let d = d2.sqrt();
        if px - py > 0.0 { d } else { -d }
    };
    d / FIT
}

enum Shape {
    Circle,
    Square {
        corner: f64,
    },
    Triangle,
    Star {
        inner: f64,
    },
    Cross {
        half_width: f64,
    },
    Ring {
        thickness: f64,
    },
    Heart,
    /// The unit disc minus a disc of radius `bite` centred `offset` to the right.
    Crescent {
        bite: f64,
        offset: f64,
    },
    /// Bands `period` pixels apart, the foreground `duty` of each, shifted by `phase`.
    Stripes {
        period: f64,
        duty: f64,
        phase: f64,
    },
    Checkerboard {
        cell: f64,
        phase_u: f64,
        phase_v: f64,
    },
}

impl Shape {
    fn sample(rng: &mut Xoshiro256StarStar, label: usize, size: f64) -> Self {
        match label {
            0 => Shape::Circle,
            1 => Shape::Square {
                corner: uniform(rng, 0.0, 0.1),
            },
            2 => Shape::Triangle,
            // Thin stars (inner < 0.38) turn into spiky asterisks; fat ones (> 0.5) into
            // pentagons. This range reads as "star" to everyone.
            3 => Shape::Star {
                inner: uniform(rng, 0.38, 0.5),
            },
            4 => Shape::Cross {
                half_width: uniform(rng, 0.16, 0.28),
            },
            // The hole stays clearly open (radius >= 0.6) so a ring never reads as a disc.
            5 => Shape::Ring {
                thickness: uniform(rng, 0.22, 0.4),
            },
            6 => Shape::Heart,
            7 => Shape::Crescent {
                bite: uniform(rng, 0.78, 0.95),
                offset: uniform(rng, 0.35, 0.55),
            },
            8 => {
                // 3 to 6 bands across the image: fewer reads as "two blocks", more blurs.
                let period = size * uniform(rng, 0.16, 0.3);
                Shape::Stripes {
                    period,
                    duty: uniform(rng, 0.4, 0.6),
                    phase: uniform(rng, 0.0, period),
                }
            }
            _ => {
                let cell = size * uniform(rng, 0.13, 0.24);
                Shape::Checkerboard {
                    cell,
                    phase_u: uniform(rng, 0.0, cell),
                    phase_v: uniform(rng, 0.0, cell),
                }
            }
        }
    }

    /// Patterns fill the frame; everything else is a figure placed on a background.
    fn is_pattern(&self) -> bool {
        matches!(self, Shape::Stripes { .. } | Shape::Checkerboard { .. })
    }

    /// Signed distance in local units (y up) for figures; in pixels for patterns.
    fn distance(&self, x: f64, y: f64) -> f64 {
        match *self {
            Shape::Circle => length(x, y) - 1.0,
            // Half-side 0.7 puts the corners just inside the unit circle.
            Shape::Square { corner } => sd_round_box(x, y, 0.7, corner),
            Shape::Triangle => sd_triangle(x, y),
            Shape::Star { inner } => sd_star5(x, y, inner),
            Shape::Cross { half_width } => sd_cross(x, y, half_width),
            Shape::Ring { thickness } => {
                (length(x, y) - (1.0 - thickness / 2.0)).abs() - thickness / 2.0
            }
            Shape::Heart => sd_heart(x, y),
            Shape::Crescent { bite, offset } => {
                (length(x, y) - 1.0).max(bite - length(x - offset, y))
            }
            Shape::Stripes {
                period,
                duty,
                phase,
            } => {
                let band = duty * period;
                let a = (x - phase).rem_euclid(period);
                if a < band {
                    -a.min(band - a)
                } else {
                    (a - band).min(period - a)
                }
            }
            Shape::Checkerboard {
                cell,
                phase_u,
                phase_v,
            } => {
                let (fu, fv) = ((x - phase_u) / cell, (y - phase_v) / cell);
                let (iu, iv) = (fu.floor(), fv.floor());
                let du = (fu - iu).min(1.0 - (fu - iu)) * cell;
                let dv = (fv - iv).min(1.0 - (fv - iv)) * cell;
                let d = du.min(dv);
                if (iu + iv).rem_euclid(2.0) < 1.0 {
                    -d
                } else {
                    d
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Scenes

/// Everything random about one image except its pixel noise.
struct Scene {
    label: usize,
    shape: Shape,
    fg: Paint,
    bg: Paint,
    /// Pixels per local unit (figures) or 1 (patterns).
    scale: f64,
    /// Figure diameter over image side; 1 for patterns.
    extent: f64,
    centre: (f64, f64),
    /// Rotation as (sin, cos).
    rotation: (f64, f64),
    noise_sigma: f64,
    contrast: f64,
}

impl Scene {
    /// Draws the scene. The order of draws is part of the dataset's definition: changing
    /// it changes every image (and the pinned fingerprint in the tests).
    fn sample(rng: &mut Xoshiro256StarStar, label: usize, size: u32) -> Self {
        let side = f64::from(size);
        let (fg_base, bg_base) = colour_pair(rng);
        let bg = Paint {
            base: bg_base,
            texture: Texture::background(rng),
        };
        let fg = Paint {
            base: fg_base,
            texture: Texture::foreground(rng),
        };
        let shape = Shape::sample(rng, label, side);
        // Hearts upside down read as something else; every other shape is either
        // symmetric enough or natural at any angle.
        let turns = if matches!(shape, Shape::Heart) {
            uniform(rng, -35.0 / 360.0, 35.0 / 360.0)
        } else {
            unit(rng)
        };
        let rotation = sin_cos_turns(turns);
        let (extent, scale, centre) = if shape.is_pattern() {
            (1.0, 1.0, (side / 2.0, side / 2.0))
        } else {
            let extent = uniform(rng, 0.45, 0.8);
            let radius = extent * side / 2.0;
            // Per axis, so the bounding circle stays in frame up to 5% of its radius.
            let slack = side / 2.0 - radius + 0.05 * radius;
            let cx = side / 2.0 + uniform(rng, -slack, slack);
            let cy = side / 2.0 + uniform(rng, -slack, slack);
            (extent, radius, (cx, cy))
        };
        let noise_sigma = uniform(rng, 0.0, 0.03);
        Scene {
            label,
            shape,
            contrast: (luma(fg.base) - luma(bg.base)).abs(),
            fg,
            bg,
            scale,
            extent,
            centre,
            rotation,
            noise_sigma,
        }
    }

    /// Good enough to show a person: high contrast, little noise, a decent-sized figure.
    fn is_clear(&self) -> bool {
        self.contrast >= GALLERY_MIN_CONTRAST && self.noise_sigma <= 0.02 && self.extent >= 0.55
    }

    /// Signed distance in pixels from the pixel centre `(px, py)` (image coordinates).
    fn distance_px(&self, px: f64, py: f64) -> f64 {
        let (dx, dy) = (px - self.centre.0, self.centre.1 - py); // y up
        let (s, c) = self.rotation;
        // Rotate the point by -angle, i.e. the shape by +angle.
        let (x, y) = (
            (c * dx + s * dy) / self.scale,
            (-s * dx + c * dy) / self.scale,
        );
        self.shape.distance(x, y) * self.scale
    }

    /// Renders the scene; `rng` continues the image's stream for the pixel noise.
    fn render(&self, rng: &mut Xoshiro256StarStar, size: u32) -> RgbImage {
        let side = f64::from(size);
        RgbImage::from_fn(size, size, |x, y| {
            let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let coverage = (0.5 - self.distance_px(px, py)).clamp(0.0, 1.0);
            let (u, v) = (px / side, py / side);
            let (fg, bg) = (self.fg.at(u, v), self.bg.at(u, v));
            Rgb([0, 1, 2].map(|i| {
                let value =
                    bg[i] + (fg[i] - bg[i]) * coverage + self.noise_sigma * gaussianish(rng);
                (value.clamp(0.0, 1.0) * 255.0).round() as u8
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_sin_cos_matches_libm() {
        for i in 0..1000 {
            let t = f64::from(i) / 997.0 - 0.3;
            let (s, c) = sin_cos_turns(t);
            let a = t * std::f64::consts::TAU;
            assert!((s - a.sin()).abs() < 1e-14, "sin at {t}");
            assert!((c - a.cos()).abs() < 1e-14, "cos at {t}");
        }
    }

    #[test]
    fn distances_have_the_right_sign() {
        // Centre inside, far outside outside, for every figure.
        let mut rng = image_rng(1, 2);
        for label in 0..8 {
            let shape = Shape::sample(&mut rng, label, 32.0);
            let inside = match shape {
                // The ring's and crescent's centres are holes; probe their bodies.
                Shape::Ring { thickness } => (0.0, 1.0 - thickness / 2.0),
                Shape::Crescent { .. } => (-0.9, 0.0),
                _ => (0.0, 0.0),
            };
            assert!(
                shape.distance(inside.0, inside.1) < 0.0,
                "{}",
                CLASSES[label]
            );
            assert!(shape.distance(1.2, 0.9) > 0.0, "{}", CLASSES[label]);
        }
    }

    #[test]
    fn figures_fit_the_unit_circle() {
        let mut rng = image_rng(3, 4);
        for label in 0..8 {
            for _ in 0..20 {
                let shape = Shape::sample(&mut rng, label, 32.0);
                for k in 0..360 {
                    let (s, c) = sin_cos_turns(f64::from(k) / 360.0);
                    assert!(
                        shape.distance(1.01 * c, 1.01 * s) > 0.0,
                        "{} pokes out at {k} degrees",
                        CLASSES[label]
                    );
                }
            }
        }
    }

    #[test]
    fn colour_pairs_are_contrasted() {
        let mut rng = image_rng(5, 6);
        for _ in 0..1000 {
            let (a, b) = colour_pair(&mut rng);
            assert!((luma(a) - luma(b)).abs() >= MIN_CONTRAST);
        }
    }
}
