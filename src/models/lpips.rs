//! LPIPS-Alex, version 0.1 (Zhang et al., CVPR 2018): the perceptual distance the NSPGD reach
//! criterion and Table 1's last column use. Weight names are those of
//! `weights/lpips_alex.safetensors`: torchvision's `features.{0,3,6,8,10}` convolutions and the
//! `lin{0..4}.model.1.weight` heads of the `lpips` package.
//!
//! The metric, exactly as `lpips.LPIPS(net='alex', version='0.1')` with `normalize=True`:
//! pixels in [0, 1] go to 2x − 1 and through the scaling layer, AlexNet's five ReLU outputs are
//! unit-normalised over channels at every pixel, their squared difference is weighted per
//! channel by the head, averaged over the plane, and the five layers are summed.
//!
//! The backbone runs on the engine (a feature program with the five ReLUs as taps), so a batch
//! of pairs costs one forward pass over both images and no autograd graph: no gradient of
//! LPIPS is ever needed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};

use super::checkpoint::{Checkpoint, read_checkpoint};
use super::engine::{Activation, FeatureMap, Normalize, Program, ProgramBuilder, Value, Workspace};
use super::error::{ModelError, Result};
use super::layers::Padding;
use super::threads;
use super::weights::Weights;

/// The file name looked for in the data folder, and the one the conversion script writes.
pub const LPIPS_FILE_NAME: &str = "lpips_alex.safetensors";
/// The environment variable that points at the weights when no `--lpips` is given.
pub const LPIPS_ENV: &str = "BLINDSPOT_LPIPS";

/// The `lpips` package's ScalingLayer, applied after x ← 2x − 1.
const SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];
const SCALE: [f32; 3] = [0.458, 0.448, 0.450];
/// Added to the channel norm before dividing, as `lpips.normalize_tensor` does.
const NORM_EPS: f64 = 1e-10;

/// One AlexNet convolution: checkpoint index in `features`, shape, stride, padding, and
/// whether torchvision max-pools (3, stride 2) before it.
struct AlexConv {
    index: usize,
    shape: [usize; 4],
    stride: usize,
    pad: usize,
    pool_before: bool,
}

/// torchvision `alexnet().features` up to the last ReLU: the final max-pool is not a tap.
const ALEX_CONVS: [AlexConv; 5] = [
    AlexConv {
        index: 0,
        shape: [64, 3, 11, 11],
        stride: 4,
        pad: 2,
        pool_before: false,
    },
    AlexConv {
        index: 3,
        shape: [192, 64, 5, 5],
        stride: 1,
        pad: 2,
        pool_before: true,
    },
    AlexConv {
        index: 6,
        shape: [384, 192, 3, 3],
        stride: 1,
        pad: 1,
        pool_before: true,
    },
    AlexConv {
        index: 8,
        shape: [256, 384, 3, 3],
        stride: 1,
        pad: 1,
        pool_before: false,
    },
    AlexConv {
        index: 10,
        shape: [256, 256, 3, 3],
        stride: 1,
        pad: 1,
        pool_before: false,
    },
];

/// The LPIPS-Alex metric, loaded once and shared (its workspace is reused between calls).
pub struct Lpips {
    program: Program,
    /// The ReLU outputs of conv1..conv5.
    taps: [Value; 5],
    /// Per-channel weights of the five linear heads.
    heads: [Vec<f32>; 5],
    mean: [f32; 3],
    inv_std: [f32; 3],
    path: PathBuf,
    workspace: Mutex<Workspace>,
}

impl std::fmt::Debug for Lpips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpips").field("path", &self.path).finish()
    }
}

impl Lpips {
    /// Reads `lpips_alex.safetensors` (or any checkpoint with the same tensors).
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_checkpoint(&read_checkpoint(path)?)
    }

    pub fn from_checkpoint(ckpt: &Checkpoint) -> Result<Self> {
        let weights = Weights::new(&ckpt.path, &ckpt.tensors, DType::F32, Device::Cpu);
        if !weights.contains("features.0.weight") || !weights.contains("lin0.model.1.weight") {
            return Err(ModelError::Layout {
                path: ckpt.path.clone(),
                reason: "not LPIPS-Alex weights: expected AlexNet `features.{0,3,6,8,10}` and \
                         the heads `lin{0..4}.model.1.weight` (see the README's LPIPS section)"
                    .into(),
            });
        }
        let mut builder = ProgramBuilder::new();
        let mut x = builder.input();
        let mut taps = Vec::with_capacity(5);
        let mut heads = Vec::with_capacity(5);
        for (k, conv) in ALEX_CONVS.iter().enumerate() {
            if conv.pool_before {
                x = builder.max_pool(x, 3, 2, 0);
            }
            let layer = weights.conv(
                &format!("features.{}", conv.index),
                conv.shape,
                conv.stride,
                Padding::Symmetric(conv.pad),
                1,
                true,
            )?;
            x = builder.conv(x, &layer, Activation::Relu)?;
            taps.push(x);
            let head = weights.get(&format!("lin{k}.model.1.weight"), &[1, conv.shape[0], 1, 1])?;
            heads.push(head.flatten_all()?.to_vec1::<f32>()?);
        }
        let program = builder.finish_features()?;
        // (2x − 1 − shift) / scale = (x − (1 + shift) / 2) · (2 / scale).
        let mean = SHIFT.map(|s| (1.0 + s) / 2.0);
        let inv_std = SCALE.map(|s| 2.0 / s);
        let (Ok(taps), Ok(heads)) = (taps.try_into(), heads.try_into()) else {
            return Err(ModelError::Invalid("LPIPS has five layers".into()));
        };
        Ok(Self {
            program,
            taps,
            heads,
            mean,
            inv_std,
            path: ckpt.path.clone(),
            workspace: Mutex::new(Workspace::default()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// LPIPS between `a[i]` and `b[i]` for NCHW RGB pixels in [0, 1], `[n, 3, h, w]` each.
    /// Images as small as 32x32 work (AlexNet's later layers are then 1x1).
    pub fn distances(&self, a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
        if a.dims() != b.dims() {
            return Err(ModelError::Invalid(format!(
                "LPIPS compares images of one shape, got {:?} and {:?}",
                a.dims(),
                b.dims()
            )));
        }
        let (n, c, h, w) = a.dims4()?;
        let host = |t: &Tensor| -> Result<Vec<f32>> {
            Ok(t.to_device(&Device::Cpu)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        let mut pixels = host(a)?;
        pixels.extend(host(b)?);
        self.distances_host(&pixels, (n, c, h, w))
    }

    /// As `distances`, for host pixels: the `n` first images, then the `n` they are compared
    /// with, each `[3][h][w]`.
    pub fn distances_host(&self, pixels: &[f32], (n, c, h, w): Shape) -> Result<Vec<f64>> {
        if c != 3 {
            return Err(ModelError::Invalid(format!(
                "LPIPS compares RGB images, got {c} channels"
            )));
        }
        if h < 32 || w < 32 {
            return Err(ModelError::Invalid(format!(
                "LPIPS-Alex needs images of at least 32x32, got {h}x{w}"
            )));
        }
        if pixels.len() != 2 * n * c * h * w {
            return Err(ModelError::Invalid(format!(
                "LPIPS got {} values for 2 x [{n}, {c}, {h}, {w}]",
                pixels.len()
            )));
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let norm = Normalize {
            mean: &self.mean,
            inv_std: &self.inv_std,
        };
        let run = |ws: &mut Workspace| {
            self.program
                .with_features(ws, pixels, (2 * n, c, h, w), &norm, &self.taps, |maps| {
                    let mut total = vec![0f64; n];
                    for (map, head) in maps.iter().zip(&self.heads) {
                        for (t, d) in total.iter_mut().zip(layer_distances(map, head, n)) {
                            *t += d;
                        }
                    }
                    total
                })
        };
        let distances = threads::install(|| match self.workspace.try_lock() {
            Ok(mut ws) => run(&mut ws),
            Err(_) => run(&mut Workspace::default()),
        })?;
        Ok(distances)
    }
}

type Shape = (usize, usize, usize, usize);

/// One layer's term for pairs (i, n + i): the spatial mean of Σ_c w_c (â_c − b̂_c)², with â and
/// b̂ unit-normalised over channels. Sums run in f64: a 224x224 image's first layer has 3025
/// pixels of 64 channels, and the goldens are 1e-5 tight.
fn layer_distances(map: &FeatureMap<'_>, head: &[f32], n: usize) -> Vec<f64> {
    let plane = map.height * map.width;
    let stride = map.per_channel();
    let at =
        |ch: usize, image: usize, p: usize| f64::from(map.data[ch * stride + image * plane + p]);
    (0..n)
        .map(|i| {
            let mut sum = 0f64;
            for p in 0..plane {
                let (mut na, mut nb) = (0f64, 0f64);
                for ch in 0..map.channels {
                    na += at(ch, i, p).powi(2);
                    nb += at(ch, n + i, p).powi(2);
                }
                let (ia, ib) = (1.0 / (na.sqrt() + NORM_EPS), 1.0 / (nb.sqrt() + NORM_EPS));
                for (ch, &wc) in head.iter().enumerate() {
                    let d = at(ch, i, p) * ia - at(ch, n + i, p) * ib;
                    sum += f64::from(wc) * d * d;
                }
            }
            sum / plane as f64
        })
        .collect()
}

/// Where the LPIPS weights are, in order: `explicit` (`--lpips`), `$BLINDSPOT_LPIPS`, then
/// `lpips_alex.safetensors` in the data folder. `Ok(None)` when none is given or present: the
/// caller then reports LPIPS as n/a. A path that is given but missing is an error.
pub fn locate_lpips(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
    let missing = |path: PathBuf, from: &str| ModelError::Io {
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the LPIPS weights named by {from} do not exist"),
        ),
        path,
    };
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(Some(path.to_path_buf()))
        } else {
            Err(missing(path.to_path_buf(), "--lpips"))
        };
    }
    if let Some(path) = std::env::var_os(LPIPS_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(Some(path))
        } else {
            Err(missing(path, LPIPS_ENV))
        };
    }
    Ok(crate::paths::data_dir()
        .map(|d| d.join(LPIPS_FILE_NAME))
        .filter(|p| p.is_file()))
}

/// `locate_lpips` and `Lpips::load` together.
pub fn load_lpips(explicit: Option<&Path>) -> Result<Option<Lpips>> {
    locate_lpips(explicit)?
        .map(|path| Lpips::load(&path))
        .transpose()
}
