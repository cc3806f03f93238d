//! torchvision / timm ResNet v1.5 (stride on the 3x3 conv of a bottleneck), BasicBlock or
//! Bottleneck, any block counts and widths: ResNet-18/34/50/101/152, Wide-ResNet-50-2 and the
//! like. Names as torchvision: `conv1`, `bn1`, `layer{1..4}.{i}.conv{1..3}`, `bn{1..3}`,
//! `downsample.{0,1}`, `fc`.

use candle_core::{Module, Result as CResult, Tensor};

use super::classifier::Network;
use super::engine::{self, Activation, Program, ProgramBuilder};
use super::error::{ModelError, Result};
use super::layers::{ConvBn, Linear, Padding, global_avg_pool, max_pool2d};
use super::weights::Weights;

const BN_EPS: f64 = 1e-5;
const STAGES: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Basic,
    Bottleneck,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    pub block: BlockKind,
    /// Blocks in each of the four stages, e.g. [3, 4, 6, 3] for ResNet-50.
    pub layers: [usize; STAGES],
    pub stem_width: usize,
    pub in_channels: usize,
    pub num_classes: usize,
}

impl ResNetConfig {
    /// The conventional name (resnet50, wide_resnet50_2 ...) when the layout is a standard one.
    pub fn name(&self, w: &Weights) -> String {
        let per_block = match self.block {
            BlockKind::Basic => 2,
            BlockKind::Bottleneck => 3,
        };
        let depth = per_block * self.layers.iter().sum::<usize>() + 2;
        let inner = w.shape("layer1.0.conv1.weight").map_or(0, |s| s[0]);
        match (self.block, inner / self.stem_width.max(1)) {
            (BlockKind::Bottleneck, 2) => format!("wide_resnet{depth}_2"),
            _ => format!("resnet{depth}"),
        }
    }

    pub fn infer(w: &Weights) -> Result<Self> {
        let stem = w.require_shape("conv1.weight", 4)?;
        let (stem_width, in_channels) = (stem[0], stem[1]);
        let block = if w.contains("layer1.0.conv3.weight") {
            BlockKind::Bottleneck
        } else {
            BlockKind::Basic
        };
        let mut layers = [0; STAGES];
        for (s, n) in layers.iter_mut().enumerate() {
            *n = w.count_indexed(&format!("layer{}", s + 1));
            if *n == 0 {
                return Err(ModelError::MissingTensor {
                    path: w.path().to_path_buf(),
                    name: format!("layer{}.0.conv1.weight", s + 1),
                    expected: vec![0; 4],
                });
            }
        }
        let num_classes = w.require_shape("fc.weight", 2)?[0];
        Ok(Self {
            block,
            layers,
            stem_width,
            in_channels,
            num_classes,
        })
    }
}

struct Block {
    convs: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

impl Block {
    /// Reads one block; widths come from the checkpoint's shapes so any width multiplier works.
    fn new(
        w: &Weights,
        name: &str,
        kind: BlockKind,
        in_c: usize,
        stride: usize,
        fold: bool,
    ) -> Result<(Self, usize)> {
        let conv_bn = |i: usize, cin: usize, k: usize, stride: usize| -> Result<(ConvBn, usize)> {
            let cname = format!("{name}.conv{i}");
            let out = w.require_shape(&format!("{cname}.weight"), 4)?[0];
            let conv = w.conv(
                &cname,
                [out, cin, k, k],
                stride,
                Padding::Symmetric(k / 2),
                1,
                false,
            )?;
            let bn = w.batch_norm(&format!("{name}.bn{i}"), out, BN_EPS)?;
            Ok((ConvBn::new(conv, bn, fold)?, out))
        };
        let (convs, out_c) = match kind {
            BlockKind::Basic => {
                let (c1, mid) = conv_bn(1, in_c, 3, stride)?;
                let (c2, out) = conv_bn(2, mid, 3, 1)?;
                (vec![c1, c2], out)
            }
            BlockKind::Bottleneck => {
                let (c1, mid) = conv_bn(1, in_c, 1, 1)?;
                let (c2, mid2) = conv_bn(2, mid, 3, stride)?;
                let (c3, out) = conv_bn(3, mid2, 1, 1)?;
                (vec![c1, c2, c3], out)
            }
        };
        let downsample = if w.contains(&format!("{name}.downsample.0.weight")) {
            Some(w.downsample(name, [in_c, out_c], stride, BN_EPS, fold)?)
        } else if stride != 1 || in_c != out_c {
            return Err(ModelError::MissingTensor {
                path: w.path().to_path_buf(),
                name: format!("{name}.downsample.0.weight"),
                expected: vec![out_c, in_c, 1, 1],
            });
        } else {
            None
        };
        Ok((Self { convs, downsample }, out_c))
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let mut y = x.clone();
        let last = self.convs.len() - 1;
        for (i, conv) in self.convs.iter().enumerate() {
            y = conv.forward(&y)?;
            if i < last {
                y = y.relu()?;
            }
        }
        let shortcut = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        (y + shortcut)?.relu()
    }
}

pub struct ResNet {
    stem: ConvBn,
    blocks: Vec<Block>,
    fc: Linear,
    program: Option<Program>,
}

impl ResNet {
    pub fn new(w: &Weights, cfg: &ResNetConfig, fold: bool) -> Result<Self> {
        let conv = w.conv(
            "conv1",
            [cfg.stem_width, cfg.in_channels, 7, 7],
            2,
            Padding::Symmetric(3),
            1,
            false,
        )?;
        let stem = ConvBn::new(conv, w.batch_norm("bn1", cfg.stem_width, BN_EPS)?, fold)?;
        let mut blocks = Vec::new();
        let mut in_c = cfg.stem_width;
        for (s, &n) in cfg.layers.iter().enumerate() {
            for i in 0..n {
                let stride = if s > 0 && i == 0 { 2 } else { 1 };
                let (block, out_c) = Block::new(
                    w,
                    &format!("layer{}.{i}", s + 1),
                    cfg.block,
                    in_c,
                    stride,
                    fold,
                )?;
                blocks.push(block);
                in_c = out_c;
            }
        }
        let fc = w.linear("fc", cfg.num_classes, in_c, true)?;
        let mut net = Self {
            stem,
            blocks,
            fc,
            program: None,
        };
        if engine::supports(net.stem.conv().weight()) {
            net.program = Some(net.compile()?);
        }
        Ok(net)
    }

    /// The same network as engine ops.
    fn compile(&self) -> CResult<Program> {
        let mut p = ProgramBuilder::new();
        let x = p.conv_bn(p.input(), &self.stem, Activation::Relu)?;
        let mut x = p.max_pool(x, 3, 2, 1);
        for block in &self.blocks {
            let mut y = x;
            let last = block.convs.len() - 1;
            for (i, conv) in block.convs.iter().enumerate() {
                let act = if i < last {
                    Activation::Relu
                } else {
                    Activation::None
                };
                y = p.conv_bn(y, conv, act)?;
            }
            let shortcut = match &block.downsample {
                Some(d) => p.conv_bn(x, d, Activation::None)?,
                None => x,
            };
            x = p.add(y, shortcut, Activation::Relu);
        }
        let pooled = p.global_avg_pool(x);
        p.linear(pooled, &self.fc)?;
        p.finish()
    }
}

impl Network for ResNet {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let x = self.stem.forward(x)?.relu()?;
        let mut x = max_pool2d(&x, 3, 2, 1)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        self.fc.forward(&global_avg_pool(&x)?)
    }

    fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }
}
