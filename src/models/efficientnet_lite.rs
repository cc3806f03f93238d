//! EfficientNet-Lite0..4 in the lukemelas `efficientnet_pytorch` layout (`_conv_stem`, `_bn0`,
//! `_blocks.N.{_expand_conv, _bn0, _depthwise_conv, _bn1, _project_conv, _bn2}`, `_conv_head`,
//! `_bn1`, `_fc`): no squeeze-excite, ReLU6 everywhere, BN eps 1e-3, TensorFlow "SAME" padding.

use candle_core::{Module, Result as CResult, Tensor};

use super::classifier::Network;
use super::engine::{self, Activation, Program, ProgramBuilder};
use super::error::{ModelError, Result};
use super::layers::{ConvBn, Linear, Padding, global_avg_pool, relu6};
use super::weights::Weights;

const BN_EPS: f64 = 1e-3;

/// Strides of the seven stages, fixed for the whole EfficientNet family; the Lite variants
/// scale only repeats and widths, which are read from the checkpoint.
const STAGE_STRIDES: [usize; 7] = [1, 2, 2, 2, 1, 2, 1];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockConfig {
    pub in_channels: usize,
    pub expanded: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EfficientNetLiteConfig {
    pub stem_width: usize,
    pub in_channels: usize,
    pub blocks: Vec<BlockConfig>,
    pub head_width: usize,
    pub num_classes: usize,
}

impl EfficientNetLiteConfig {
    /// Lite0..4 differ in block count; name by the standard counts, else generic.
    pub fn name(&self) -> String {
        match self.blocks.len() {
            16 => "efficientnet_lite0".into(),
            n => format!("efficientnet_lite_{n}blocks"),
        }
    }

    pub fn infer(w: &Weights) -> Result<Self> {
        let stem = w.require_shape("_conv_stem.weight", 4)?;
        let (stem_width, in_channels) = (stem[0], stem[1]);
        let count = w.count_indexed("_blocks");
        let mut blocks = Vec::with_capacity(count);
        let mut in_c = stem_width;
        let mut stage = 0usize;
        for i in 0..count {
            let name = format!("_blocks.{i}");
            let dw = w.require_shape(&format!("{name}._depthwise_conv.weight"), 4)?;
            let (expanded, kernel) = (dw[0], dw[2]);
            let out_c = w.require_shape(&format!("{name}._project_conv.weight"), 4)?[0];
            // A stage starts where the width changes; inside a stage blocks map c -> c.
            if i > 0 && in_c != out_c {
                stage += 1;
            }
            let stride = *STAGE_STRIDES.get(stage).ok_or_else(|| ModelError::Layout {
                path: w.path().to_path_buf(),
                reason: format!(
                    "block {i} starts stage {}, but EfficientNet has 7 stages",
                    stage + 1
                ),
            })?;
            let first_in_stage = i == 0 || in_c != out_c;
            blocks.push(BlockConfig {
                in_channels: in_c,
                expanded,
                out_channels: out_c,
                kernel,
                stride: if first_in_stage { stride } else { 1 },
            });
            in_c = out_c;
        }
        let head = w.require_shape("_conv_head.weight", 4)?;
        Ok(Self {
            stem_width,
            in_channels,
            blocks,
            head_width: head[0],
            num_classes: w.require_shape("_fc.weight", 2)?[0],
        })
    }
}

struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl MbConv {
    fn new(w: &Weights, name: &str, c: &BlockConfig, fold: bool) -> Result<Self> {
        let expand = if w.contains(&format!("{name}._expand_conv.weight")) {
            let conv = w.conv(
                &format!("{name}._expand_conv"),
                [c.expanded, c.in_channels, 1, 1],
                1,
                Padding::TfSame,
                1,
                false,
            )?;
            Some(ConvBn::new(
                conv,
                w.batch_norm(&format!("{name}._bn0"), c.expanded, BN_EPS)?,
                fold,
            )?)
        } else {
            None
        };
        let k = c.kernel;
        let dw = w.conv(
            &format!("{name}._depthwise_conv"),
            [c.expanded, 1, k, k],
            c.stride,
            Padding::TfSame,
            c.expanded,
            false,
        )?;
        let depthwise = ConvBn::new(
            dw,
            w.batch_norm(&format!("{name}._bn1"), c.expanded, BN_EPS)?,
            fold,
        )?;
        let proj = w.conv(
            &format!("{name}._project_conv"),
            [c.out_channels, c.expanded, 1, 1],
            1,
            Padding::TfSame,
            1,
            false,
        )?;
        let project = ConvBn::new(
            proj,
            w.batch_norm(&format!("{name}._bn2"), c.out_channels, BN_EPS)?,
            fold,
        )?;
        Ok(Self {
            expand,
            depthwise,
            project,
            residual: c.stride == 1 && c.in_channels == c.out_channels,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let h = match &self.expand {
            Some(e) => relu6(&e.forward(x)?)?,
            None => x.clone(),
        };
        let h = relu6(&self.depthwise.forward(&h)?)?;
        let h = self.project.forward(&h)?;
        if self.residual { h + x } else { Ok(h) }
    }
}

pub struct EfficientNetLite {
    stem: ConvBn,
    blocks: Vec<MbConv>,
    head: ConvBn,
    fc: Linear,
    program: Option<Program>,
}

impl EfficientNetLite {
    pub fn new(w: &Weights, cfg: &EfficientNetLiteConfig, fold: bool) -> Result<Self> {
        let stem = w.conv(
            "_conv_stem",
            [cfg.stem_width, cfg.in_channels, 3, 3],
            2,
            Padding::TfSame,
            1,
            false,
        )?;
        let stem = ConvBn::new(stem, w.batch_norm("_bn0", cfg.stem_width, BN_EPS)?, fold)?;
        let blocks = cfg
            .blocks
            .iter()
            .enumerate()
            .map(|(i, c)| MbConv::new(w, &format!("_blocks.{i}"), c, fold))
            .collect::<Result<Vec<_>>>()?;
        let last = cfg.blocks.last().map_or(cfg.stem_width, |b| b.out_channels);
        let head = w.conv(
            "_conv_head",
            [cfg.head_width, last, 1, 1],
            1,
            Padding::TfSame,
            1,
            false,
        )?;
        let head = ConvBn::new(head, w.batch_norm("_bn1", cfg.head_width, BN_EPS)?, fold)?;
        let fc = w.linear("_fc", cfg.num_classes, cfg.head_width, true)?;
        let mut net = Self {
            stem,
            blocks,
            head,
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
        let mut x = p.conv_bn(p.input(), &self.stem, Activation::Relu6)?;
        for block in &self.blocks {
            let h = match &block.expand {
                Some(e) => p.conv_bn(x, e, Activation::Relu6)?,
                None => x,
            };
            let h = p.conv_bn(h, &block.depthwise, Activation::Relu6)?;
            let h = p.conv_bn(h, &block.project, Activation::None)?;
            x = if block.residual {
                p.add(h, x, Activation::None)
            } else {
                h
            };
        }
        let x = p.conv_bn(x, &self.head, Activation::Relu6)?;
        let pooled = p.global_avg_pool(x);
        p.linear(pooled, &self.fc)?;
        p.finish()
    }
}

impl Network for EfficientNetLite {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let mut x = relu6(&self.stem.forward(x)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let x = relu6(&self.head.forward(&x)?)?;
        self.fc.forward(&global_avg_pool(&x)?)
    }

    fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }
}
