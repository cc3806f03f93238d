//! Standard layouts with seeded random weights, for benchmarks and tests where no checkpoint
//! is needed (timing does not depend on the weights' values). Names and shapes are exactly
//! those of the real checkpoints, so the same loader path builds them.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::checkpoint::Checkpoint;
use super::error::Result;

/// The layouts `blindspot bench` knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZooModel {
    Resnet20,
    Resnet18,
    Resnet50,
    EfficientnetLite0,
    /// DeiT-S / ViT-S/16 at 224 px (timm `deit_small_patch16_224`).
    VitS16,
    /// DeiT-Ti / ViT-Ti/16 at 224 px (timm `deit_tiny_patch16_224`).
    VitTi16,
}

impl ZooModel {
    pub const ALL: [ZooModel; 6] = [
        Self::Resnet20,
        Self::Resnet18,
        Self::Resnet50,
        Self::EfficientnetLite0,
        Self::VitS16,
        Self::VitTi16,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Resnet20 => "resnet20",
            Self::Resnet18 => "resnet18",
            Self::Resnet50 => "resnet50",
            Self::EfficientnetLite0 => "efficientnet_lite0",
            Self::VitS16 => "vit_s16",
            Self::VitTi16 => "vit_ti16",
        }
    }

    pub fn input_size(self) -> usize {
        match self {
            Self::Resnet20 => 32,
            _ => 224,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// An in-memory checkpoint with this layout and weights drawn from a fixed seed.
    pub fn checkpoint(self) -> Result<Checkpoint> {
        let mut b = Builder::default();
        match self {
            Self::Resnet20 => cifar_resnet(&mut b, 3, 10),
            Self::Resnet18 => torchvision_resnet(&mut b, false, [2, 2, 2, 2], 1000),
            Self::Resnet50 => torchvision_resnet(&mut b, true, [3, 4, 6, 3], 1000),
            Self::EfficientnetLite0 => efficientnet_lite0(&mut b, 1000),
            Self::VitS16 => vision_transformer(&mut b, 384, 12, 1000),
            Self::VitTi16 => vision_transformer(&mut b, 192, 12, 1000),
        }
        let tensors = b
            .shapes
            .into_iter()
            .enumerate()
            .map(|(i, (name, shape, kind))| Ok((name, kind.tensor(&shape, i as u64)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        Ok(Checkpoint::in_memory(Path::new(self.name()), tensors))
    }
}

#[derive(Clone, Copy)]
enum Init {
    /// He-normal-like scale for conv and linear weights, so activations stay finite.
    Weight,
    Zeros,
    Ones,
    /// Positive running variance near 1.
    Variance,
}

impl Init {
    fn tensor(self, shape: &[usize], seed: u64) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let mut state = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0x2545_F491_4F6C_DD1D)
            | 1;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let data: Vec<f32> = match self {
            Self::Weight => {
                let bound = (6.0 / fan_in as f32).sqrt();
                (0..n).map(|_| (2.0 * uniform() - 1.0) * bound).collect()
            }
            Self::Zeros => vec![0.0; n],
            Self::Ones => vec![1.0; n],
            Self::Variance => (0..n).map(|_| 0.5 + uniform()).collect(),
        };
        Ok(Tensor::from_vec(data, shape, &Device::Cpu)?.to_dtype(DType::F32)?)
    }
}

#[derive(Default)]
struct Builder {
    shapes: Vec<(String, Vec<usize>, Init)>,
}

impl Builder {
    fn add(&mut self, name: String, shape: &[usize], init: Init) {
        self.shapes.push((name, shape.to_vec(), init));
    }
    fn conv(&mut self, name: &str, out: usize, inp: usize, k: usize) {
        self.add(format!("{name}.weight"), &[out, inp, k, k], Init::Weight);
    }
    fn bn(&mut self, name: &str, c: usize) {
        self.add(format!("{name}.weight"), &[c], Init::Ones);
        self.add(format!("{name}.bias"), &[c], Init::Zeros);
        self.add(format!("{name}.running_mean"), &[c], Init::Zeros);
        self.add(format!("{name}.running_var"), &[c], Init::Variance);
    }
    fn layer_norm(&mut self, name: &str, c: usize) {
        self.add(format!("{name}.weight"), &[c], Init::Ones);
        self.add(format!("{name}.bias"), &[c], Init::Zeros);
    }

    fn linear(&mut self, name: &str, out: usize, inp: usize) {
        self.add(format!("{name}.weight"), &[out, inp], Init::Weight);
        self.add(format!("{name}.bias"), &[out], Init::Zeros);
    }
}

fn cifar_resnet(b: &mut Builder, n: usize, classes: usize) {
    b.conv("conv1", 16, 3, 3);
    b.bn("bn1", 16);
    let mut in_c = 16;
    for (s, width) in [16, 32, 64].into_iter().enumerate() {
        for i in 0..n {
            let name = format!("layer{}.{i}", s + 1);
            b.conv(&format!("{name}.conv1"), width, in_c, 3);
            b.bn(&format!("{name}.bn1"), width);
            b.conv(&format!("{name}.conv2"), width, width, 3);
            b.bn(&format!("{name}.bn2"), width);
            in_c = width;
        }
    }
    b.linear("linear", classes, 64);
}

fn torchvision_resnet(b: &mut Builder, bottleneck: bool, layers: [usize; 4], classes: usize) {
    b.conv("conv1", 64, 3, 7);
    b.bn("bn1", 64);
    let expansion = if bottleneck { 4 } else { 1 };
    let mut in_c = 64;
    for (s, &n) in layers.iter().enumerate() {
        let width = 64 << s;
        let out = width * expansion;
        for i in 0..n {
            let name = format!("layer{}.{i}", s + 1);
            if bottleneck {
                b.conv(&format!("{name}.conv1"), width, in_c, 1);
                b.bn(&format!("{name}.bn1"), width);
                b.conv(&format!("{name}.conv2"), width, width, 3);
                b.bn(&format!("{name}.bn2"), width);
                b.conv(&format!("{name}.conv3"), out, width, 1);
                b.bn(&format!("{name}.bn3"), out);
            } else {
                b.conv(&format!("{name}.conv1"), width, in_c, 3);
                b.bn(&format!("{name}.bn1"), width);
                b.conv(&format!("{name}.conv2"), width, width, 3);
                b.bn(&format!("{name}.bn2"), width);
            }
            if i == 0 && (s > 0 || in_c != out) {
                b.conv(&format!("{name}.downsample.0"), out, in_c, 1);
                b.bn(&format!("{name}.downsample.1"), out);
            }
            in_c = out;
        }
    }
    b.linear("fc", classes, in_c);
}

fn efficientnet_lite0(b: &mut Builder, classes: usize) {
    // (repeats, kernel, stride, expand, out) of EfficientNet-Lite0; stride is implied by stage.
    const STAGES: [(usize, usize, usize, usize); 7] = [
        (1, 3, 1, 16),
        (2, 3, 6, 24),
        (2, 5, 6, 40),
        (3, 3, 6, 80),
        (3, 5, 6, 112),
        (4, 5, 6, 192),
        (1, 3, 6, 320),
    ];
    b.conv("_conv_stem", 32, 3, 3);
    b.bn("_bn0", 32);
    let mut in_c = 32;
    let mut index = 0;
    for (repeats, k, expand, out) in STAGES {
        for _ in 0..repeats {
            let name = format!("_blocks.{index}");
            let mid = in_c * expand;
            if expand != 1 {
                b.conv(&format!("{name}._expand_conv"), mid, in_c, 1);
                b.bn(&format!("{name}._bn0"), mid);
            }
            b.add(
                format!("{name}._depthwise_conv.weight"),
                &[mid, 1, k, k],
                Init::Weight,
            );
            b.bn(&format!("{name}._bn1"), mid);
            b.conv(&format!("{name}._project_conv"), out, mid, 1);
            b.bn(&format!("{name}._bn2"), out);
            in_c = out;
            index += 1;
        }
    }
    b.conv("_conv_head", 1280, 320, 1);
    b.bn("_bn1", 1280);
    b.linear("_fc", classes, 1280);
}

/// timm's VisionTransformer at 224 px with 16-px patches, `width` channels in 64-wide heads
/// (the loader infers the head count from that convention), an MLP of 4x the width.
fn vision_transformer(b: &mut Builder, width: usize, depth: usize, classes: usize) {
    let tokens = 1 + (224 / 16) * (224 / 16);
    b.conv("patch_embed.proj", width, 3, 16);
    b.add("patch_embed.proj.bias".into(), &[width], Init::Zeros);
    b.add("cls_token".into(), &[1, 1, width], Init::Weight);
    b.add("pos_embed".into(), &[1, tokens, width], Init::Weight);
    for i in 0..depth {
        let name = format!("blocks.{i}");
        b.layer_norm(&format!("{name}.norm1"), width);
        b.linear(&format!("{name}.attn.qkv"), 3 * width, width);
        b.linear(&format!("{name}.attn.proj"), width, width);
        b.layer_norm(&format!("{name}.norm2"), width);
        b.linear(&format!("{name}.mlp.fc1"), 4 * width, width);
        b.linear(&format!("{name}.mlp.fc2"), width, 4 * width);
    }
    b.layer_norm("norm", width);
    b.linear("head", classes, width);
}
