//! A plain CNN: blocks of conv (stride 1, "same" padding, optional bias), ReLU and 2x2 max
//! pooling, then a flatten in NCHW order and linear layers with ReLU between them (none after
//! the last). This is the small MNIST/CIFAR network of many robustness papers, e.g.
//! advertorch's `LeNet5` (`conv1`, `conv2`, `linear1`, `linear2`).
//!
//! The layers are read from the checkpoint alone: every tensor must be a `<layer>.weight`
//! (rank 4 for a conv, rank 2 for a linear layer) or its `<layer>.bias`. All convs run before
//! all linear layers (so `classifier.*` may sort before `features.*`), each kind in natural
//! name order (`conv2` before `conv10`, `features.2` before `features.10`). The input size is implied: each block halves the side, so the
//! first linear layer's inputs fix the last feature map, `side²` pixels of the last conv's
//! width, and the input is `side · 2^blocks` square.

use candle_core::{Module, Result as CResult, Tensor};

use super::classifier::Network;
use super::engine::{self, Activation, Program, ProgramBuilder};
use super::error::{ModelError, Result};
use super::layers::{Conv2d, Linear, Padding, max_pool2d};
use super::weights::Weights;

/// One convolution read from the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub name: String,
    pub out_c: usize,
    pub in_c: usize,
    pub kernel: usize,
    pub bias: bool,
}

/// One linear layer read from the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearSpec {
    pub name: String,
    pub out: usize,
    pub inp: usize,
    pub bias: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainCnnConfig {
    pub convs: Vec<ConvSpec>,
    pub linears: Vec<LinearSpec>,
    /// Side of the last (square) feature map, before the flatten.
    pub feature_side: usize,
}

/// A name split into text and number runs, so that `conv10` sorts after `conv2`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    Number(u64),
    Text(String),
}

fn natural_key(name: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut run = String::new();
    let mut digits = false;
    for ch in name.chars() {
        if !run.is_empty() && ch.is_ascii_digit() != digits {
            tokens.push(token(&run, digits));
            run.clear();
        }
        digits = ch.is_ascii_digit();
        run.push(ch);
    }
    if !run.is_empty() {
        tokens.push(token(&run, digits));
    }
    tokens
}

fn token(run: &str, digits: bool) -> Token {
    match run.parse::<u64>() {
        Ok(n) if digits => Token::Number(n),
        _ => Token::Text(run.to_string()),
    }
}

impl PlainCnnConfig {
    pub fn in_channels(&self) -> usize {
        self.convs.first().map_or(0, |c| c.in_c)
    }

    pub fn num_classes(&self) -> usize {
        self.linears.last().map_or(0, |l| l.out)
    }

    /// The input side the weights imply: the feature side doubled once per pooling block.
    pub fn input_side(&self) -> usize {
        self.feature_side << self.convs.len()
    }

    /// e.g. `plain_cnn_c32-64_fc200-10`.
    pub fn name(&self) -> String {
        let join = |v: Vec<usize>| v.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
        format!(
            "plain_cnn_c{}_fc{}",
            join(self.convs.iter().map(|c| c.out_c).collect()),
            join(self.linears.iter().map(|l| l.out).collect())
        )
    }

    /// The layers from tensor names and shapes, or why these tensors are not a plain CNN.
    pub fn from_shapes<'a>(
        shapes: impl IntoIterator<Item = (&'a str, &'a [usize])>,
    ) -> std::result::Result<Self, String> {
        // layer name -> (weight shape, bias length)
        let mut layers: Vec<(String, Option<Vec<usize>>, Option<Vec<usize>>)> = Vec::new();
        for (name, shape) in shapes {
            let (layer, is_weight) =
                match (name.strip_suffix(".weight"), name.strip_suffix(".bias")) {
                    (Some(l), _) => (l, true),
                    (None, Some(l)) => (l, false),
                    (None, None) => {
                        return Err(format!(
                            "tensor `{name}` is neither a layer's weight nor its bias"
                        ));
                    }
                };
            let i = match layers.iter().position(|(n, _, _)| n == layer) {
                Some(i) => i,
                None => {
                    layers.push((layer.to_string(), None, None));
                    layers.len() - 1
                }
            };
            let slot = if is_weight {
                &mut layers[i].1
            } else {
                &mut layers[i].2
            };
            *slot = Some(shape.to_vec());
        }
        layers.sort_by_cached_key(|(name, _, _)| natural_key(name));

        let mut convs = Vec::new();
        let mut linears: Vec<LinearSpec> = Vec::new();
        for (name, weight, bias) in layers {
            let Some(weight) = weight else {
                return Err(format!("layer `{name}` has a bias but no weight"));
            };
            let out = weight[0];
            let bias = match bias {
                None => false,
                Some(b) if b == [out] => true,
                Some(b) => {
                    return Err(format!("`{name}.bias` has shape {b:?} for {out} outputs"));
                }
            };
            match *weight.as_slice() {
                [out_c, in_c, kh, kw] => {
                    if kh != kw || kh % 2 == 0 {
                        return Err(format!(
                            "conv `{name}` has a {kh}x{kw} kernel; only odd square kernels \
                             (\"same\" padding) are supported"
                        ));
                    }
                    convs.push(ConvSpec {
                        name,
                        out_c,
                        in_c,
                        kernel: kh,
                        bias,
                    });
                }
                [out, inp] => linears.push(LinearSpec {
                    name,
                    out,
                    inp,
                    bias,
                }),
                _ => {
                    return Err(format!(
                        "`{name}.weight` has shape {weight:?}, neither a conv nor a linear layer"
                    ));
                }
            }
        }
        let (Some(last_conv), Some(first_linear)) = (convs.last(), linears.first()) else {
            return Err("a plain CNN needs at least one conv and one linear layer".into());
        };
        for pair in convs.windows(2) {
            if pair[1].in_c != pair[0].out_c {
                return Err(format!(
                    "conv `{}` takes {} channels after `{}`'s {}",
                    pair[1].name, pair[1].in_c, pair[0].name, pair[0].out_c
                ));
            }
        }
        for pair in linears.windows(2) {
            if pair[1].inp != pair[0].out {
                return Err(format!(
                    "linear `{}` takes {} features after `{}`'s {}",
                    pair[1].name, pair[1].inp, pair[0].name, pair[0].out
                ));
            }
        }
        let per_channel = first_linear.inp / last_conv.out_c.max(1);
        let feature_side = per_channel.isqrt();
        if feature_side == 0 || feature_side * feature_side * last_conv.out_c != first_linear.inp {
            return Err(format!(
                "linear `{}` takes {} features, not a square map of `{}`'s {} channels",
                first_linear.name, first_linear.inp, last_conv.name, last_conv.out_c
            ));
        }
        Ok(Self {
            convs,
            linears,
            feature_side,
        })
    }

    pub fn infer(w: &Weights) -> Result<Self> {
        Self::from_shapes(w.shapes()).map_err(|reason| ModelError::Layout {
            path: w.path().to_path_buf(),
            reason: format!("not a plain CNN: {reason}"),
        })
    }
}

pub struct PlainCnn {
    convs: Vec<Conv2d>,
    linears: Vec<Linear>,
    program: Option<Program>,
}

impl PlainCnn {
    pub fn new(w: &Weights, cfg: &PlainCnnConfig) -> Result<Self> {
        let convs = cfg
            .convs
            .iter()
            .map(|c| {
                w.conv(
                    &c.name,
                    [c.out_c, c.in_c, c.kernel, c.kernel],
                    1,
                    Padding::Symmetric(c.kernel / 2),
                    1,
                    c.bias,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let linears = cfg
            .linears
            .iter()
            .map(|l| w.linear(&l.name, l.out, l.inp, l.bias))
            .collect::<Result<Vec<_>>>()?;
        let mut net = Self {
            convs,
            linears,
            program: None,
        };
        if net
            .convs
            .first()
            .is_some_and(|c| engine::supports(c.weight()))
        {
            net.program = Some(net.compile()?);
        }
        Ok(net)
    }

    /// The same network as engine ops.
    fn compile(&self) -> CResult<Program> {
        let mut p = ProgramBuilder::new();
        let mut x = p.input();
        for conv in &self.convs {
            let y = p.conv(x, conv, Activation::Relu)?;
            x = p.max_pool(y, 2, 2, 0);
        }
        x = p.flatten(x);
        let last = self.linears.len().saturating_sub(1);
        for (i, linear) in self.linears.iter().enumerate() {
            let act = if i == last {
                Activation::None
            } else {
                Activation::Relu
            };
            x = p.linear_act(x, linear, act)?;
        }
        p.finish()
    }
}

impl Network for PlainCnn {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let mut x = x.clone();
        for conv in &self.convs {
            x = max_pool2d(&conv.forward(&x)?.relu()?, 2, 2, 0)?;
        }
        // NCHW flatten: PyTorch's `x.view(B, -1)`.
        let mut x = x.flatten_from(1)?;
        let last = self.linears.len().saturating_sub(1);
        for (i, linear) in self.linears.iter().enumerate() {
            x = linear.forward(&x)?;
            if i != last {
                x = x.relu()?;
            }
        }
        Ok(x)
    }

    fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lenet() -> Vec<(&'static str, Vec<usize>)> {
        vec![
            ("conv1.bias", vec![32]),
            ("conv1.weight", vec![32, 1, 3, 3]),
            ("conv2.bias", vec![64]),
            ("conv2.weight", vec![64, 32, 3, 3]),
            ("linear1.bias", vec![200]),
            ("linear1.weight", vec![200, 3136]),
            ("linear2.bias", vec![10]),
            ("linear2.weight", vec![10, 200]),
        ]
    }

    fn config(shapes: &[(&str, Vec<usize>)]) -> std::result::Result<PlainCnnConfig, String> {
        PlainCnnConfig::from_shapes(shapes.iter().map(|(n, s)| (*n, s.as_slice())))
    }

    #[test]
    fn reads_advertorch_lenet5() {
        let cfg = config(&lenet()).unwrap();
        assert_eq!(cfg.name(), "plain_cnn_c32-64_fc200-10");
        assert_eq!(cfg.in_channels(), 1);
        assert_eq!(cfg.num_classes(), 10);
        assert_eq!(cfg.feature_side, 7);
        assert_eq!(cfg.input_side(), 28);
        assert!(cfg.convs.iter().all(|c| c.bias && c.kernel == 3));
    }

    #[test]
    fn orders_layers_naturally_and_refuses_other_layouts() {
        let shapes = vec![
            ("features.10.weight", vec![8, 4, 3, 3]),
            ("features.2.weight", vec![4, 1, 5, 5]),
            ("classifier.weight", vec![10, 8 * 16]),
        ];
        let cfg = config(&shapes).unwrap();
        assert_eq!(cfg.convs[0].name, "features.2");
        assert_eq!(cfg.input_side(), 16);

        let mut bn = lenet();
        bn.push(("bn1.running_mean", vec![32]));
        assert!(config(&bn).unwrap_err().contains("bn1.running_mean"));
        let mut not_square = lenet();
        not_square[5].1 = vec![200, 3000];
        assert!(config(&not_square).unwrap_err().contains("square"));
        let no_conv = vec![("fc.weight", vec![10, 4])];
        assert!(config(&no_conv).is_err());
    }
}
