//! CIFAR ResNet (He et al. 2016, §4.2), any depth 6n+2, in the layout of
//! akamaster/pytorch_resnet_cifar10 (`conv1`, `bn1`, `layer{1,2,3}.{i}.conv{1,2}`, `bn{1,2}`,
//! `linear`). The shortcut where the width changes is either the paper's parameter-free
//! option A (akamaster) or option B, a strided 1x1 conv and batch norm stored as
//! `layerX.0.downsample.{0,1}` (torchvision's naming, used by many robust-training repos);
//! which one is told from the tensor names.

use candle_core::{Module, Result as CResult, Tensor};

use super::classifier::Network;
use super::engine::{self, Activation, Program, ProgramBuilder};
use super::error::Result;
use super::layers::{ConvBn, Padding, global_avg_pool, option_a_shortcut};
use super::weights::Weights;

const BN_EPS: f64 = 1e-5;

/// The shortcut of a block whose stride or width changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// Subsample by 2 and zero-pad the new channels (no parameters).
    OptionA,
    /// `downsample.0` (1x1 conv with the block's stride, no bias) then `downsample.1` (BN).
    OptionB,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CifarResNetConfig {
    /// Blocks per stage, n; depth = 6n + 2.
    pub blocks_per_stage: usize,
    /// Channel widths of the three stages (16, 32, 64 in the paper).
    pub widths: [usize; 3],
    pub in_channels: usize,
    pub num_classes: usize,
    pub shortcut: Shortcut,
}

impl CifarResNetConfig {
    pub fn depth(&self) -> usize {
        6 * self.blocks_per_stage + 2
    }

    /// Reads n, the widths and the class count from tensor names and shapes.
    pub fn infer(w: &Weights) -> Result<Self> {
        let stem = w.require_shape("conv1.weight", 4)?;
        let in_channels = stem[1];
        let mut widths = [0; 3];
        for (s, width) in widths.iter_mut().enumerate() {
            *width = w.require_shape(&format!("layer{}.0.conv1.weight", s + 1), 4)?[0];
        }
        let blocks_per_stage = w.count_indexed("layer1");
        let num_classes = w.require_shape("linear.weight", 2)?[0];
        // Any projection weights mean option B: a file never mixes the two.
        let shortcut = if (1..=3).any(|s| w.contains(&format!("layer{s}.0.downsample.0.weight"))) {
            Shortcut::OptionB
        } else {
            Shortcut::OptionA
        };
        Ok(Self {
            blocks_per_stage,
            widths,
            in_channels,
            num_classes,
            shortcut,
        })
    }
}

/// How a block's input reaches its sum.
enum BlockShortcut {
    Identity,
    /// Option A: subsample by 2 and zero-pad `pad` channels on each side.
    Pad(usize),
    /// Option B: strided 1x1 conv and batch norm.
    Projection(ConvBn),
}

/// conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU.
struct BasicBlock {
    conv1: ConvBn,
    conv2: ConvBn,
    shortcut: BlockShortcut,
}

impl BasicBlock {
    fn new(
        w: &Weights,
        name: &str,
        in_c: usize,
        out_c: usize,
        stride: usize,
        kind: Shortcut,
        fold: bool,
    ) -> Result<Self> {
        let conv_bn = |i: usize, cin: usize, stride: usize| -> Result<ConvBn> {
            let conv = w.conv(
                &format!("{name}.conv{i}"),
                [out_c, cin, 3, 3],
                stride,
                Padding::Symmetric(1),
                1,
                false,
            )?;
            let bn = w.batch_norm(&format!("{name}.bn{i}"), out_c, BN_EPS)?;
            Ok(ConvBn::new(conv, bn, fold)?)
        };
        let shortcut = match (stride != 1 || in_c != out_c, kind) {
            (false, _) => BlockShortcut::Identity,
            (true, Shortcut::OptionA) => BlockShortcut::Pad(out_c / 4),
            (true, Shortcut::OptionB) => BlockShortcut::Projection(w.downsample(
                name,
                [in_c, out_c],
                stride,
                BN_EPS,
                fold,
            )?),
        };
        Ok(Self {
            conv1: conv_bn(1, in_c, stride)?,
            conv2: conv_bn(2, out_c, 1)?,
            shortcut,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let y = self.conv2.forward(&self.conv1.forward(x)?.relu()?)?;
        let shortcut = match &self.shortcut {
            BlockShortcut::Identity => x.clone(),
            BlockShortcut::Pad(pad) => option_a_shortcut(x, *pad)?,
            BlockShortcut::Projection(proj) => proj.forward(x)?,
        };
        (y + shortcut)?.relu()
    }
}

pub struct CifarResNet {
    stem: ConvBn,
    blocks: Vec<BasicBlock>,
    linear: super::layers::Linear,
    program: Option<Program>,
}

impl CifarResNet {
    pub fn new(w: &Weights, cfg: &CifarResNetConfig, fold: bool) -> Result<Self> {
        let stem_conv = w.conv(
            "conv1",
            [cfg.widths[0], cfg.in_channels, 3, 3],
            1,
            Padding::Symmetric(1),
            1,
            false,
        )?;
        let stem = ConvBn::new(stem_conv, w.batch_norm("bn1", cfg.widths[0], BN_EPS)?, fold)?;
        let mut blocks = Vec::new();
        let mut in_c = cfg.widths[0];
        for (s, &out_c) in cfg.widths.iter().enumerate() {
            for i in 0..cfg.blocks_per_stage {
                let stride = if s > 0 && i == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(
                    w,
                    &format!("layer{}.{i}", s + 1),
                    in_c,
                    out_c,
                    stride,
                    cfg.shortcut,
                    fold,
                )?);
                in_c = out_c;
            }
        }
        let linear = w.linear("linear", cfg.num_classes, in_c, true)?;
        let mut net = Self {
            stem,
            blocks,
            linear,
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
        let mut x = p.conv_bn(p.input(), &self.stem, Activation::Relu)?;
        for block in &self.blocks {
            let h = p.conv_bn(x, &block.conv1, Activation::Relu)?;
            let h = p.conv_bn(h, &block.conv2, Activation::None)?;
            let shortcut = match &block.shortcut {
                BlockShortcut::Identity => x,
                BlockShortcut::Pad(pad) => p.option_a_shortcut(x, *pad),
                BlockShortcut::Projection(proj) => p.conv_bn(x, proj, Activation::None)?,
            };
            x = p.add(h, shortcut, Activation::Relu);
        }
        let pooled = p.global_avg_pool(x);
        p.linear(pooled, &self.linear)?;
        p.finish()
    }
}

impl Network for CifarResNet {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let mut x = self.stem.forward(x)?.relu()?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        self.linear.forward(&global_avg_pool(&x)?)
    }

    fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }
}
