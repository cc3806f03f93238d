//! timm VisionTransformer / DeiT: any patch size, width, depth, head count and image size.
//! Names as timm: `cls_token`, `pos_embed`, `patch_embed.proj`, `blocks.N.{norm1, attn.qkv,
//! attn.proj, norm2, mlp.fc1, mlp.fc2}`, optional `blocks.N.ls{1,2}.gamma` (LayerScale),
//! `norm`, `head`; DeiT-distilled adds `dist_token` and `head_dist`; average-pooled variants
//! have `fc_norm` instead of `norm`.

use candle_core::{Module, Result as CResult, Tensor};

use super::classifier::{Network, softmax};
use super::engine::{self, Program, ProgramBuilder, Value};
use super::error::{ModelError, Result};
use super::layers::{Conv2d, LayerNorm, Linear, Padding, gelu_exact};
use super::weights::Weights;

/// timm's default LayerNorm eps for ViT and DeiT.
pub const LN_EPS: f64 = 1e-6;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VitConfig {
    pub patch_size: usize,
    pub embed_dim: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_hidden: usize,
    /// Patches per side: the image is `grid * patch_size` pixels square.
    pub grid: [usize; 2],
    pub in_channels: usize,
    pub num_classes: usize,
    /// Class token, plus the distillation token for distilled DeiT.
    pub prefix_tokens: usize,
    pub distilled: bool,
    /// Average over patch tokens then `fc_norm`, instead of taking the class token.
    pub avg_pool: bool,
}

impl VitConfig {
    pub fn image_size(&self) -> [usize; 2] {
        [
            self.grid[0] * self.patch_size,
            self.grid[1] * self.patch_size,
        ]
    }

    pub fn name(&self) -> String {
        format!(
            "vit_p{}_d{}_l{}_h{}_{}px",
            self.patch_size,
            self.embed_dim,
            self.depth,
            self.num_heads,
            self.image_size()[0]
        )
    }

    /// Reads the hyper-parameters from names and shapes. The head count is not in the
    /// weights: it comes from `num_heads` (sidecar) or timm's convention of 64-wide heads.
    pub fn infer(w: &Weights, num_heads: Option<usize>) -> Result<Self> {
        let proj = w.require_shape("patch_embed.proj.weight", 4)?;
        let (embed_dim, in_channels, patch_size) = (proj[0], proj[1], proj[2]);
        if proj[3] != patch_size {
            return Err(ModelError::Layout {
                path: w.path().to_path_buf(),
                reason: format!("non-square patches {:?} are not supported", &proj[2..]),
            });
        }
        let distilled = w.contains("dist_token");
        let prefix_tokens = 1 + usize::from(distilled);
        let tokens = w.require_shape("pos_embed", 3)?[1];
        let patches = tokens.saturating_sub(prefix_tokens);
        let side = (patches as f64).sqrt().round() as usize;
        if side * side != patches || side == 0 {
            return Err(ModelError::Layout {
                path: w.path().to_path_buf(),
                reason: format!(
                    "pos_embed has {tokens} tokens: {patches} patches do not form a square grid"
                ),
            });
        }
        let num_heads = match num_heads {
            Some(h) => h,
            None if embed_dim % 64 == 0 => embed_dim / 64,
            None => {
                return Err(ModelError::Layout {
                    path: w.path().to_path_buf(),
                    reason: format!(
                        "cannot infer the head count for width {embed_dim}: set \"num_heads\" in the sidecar JSON"
                    ),
                });
            }
        };
        if num_heads == 0 || embed_dim % num_heads != 0 {
            return Err(ModelError::Layout {
                path: w.path().to_path_buf(),
                reason: format!("{num_heads} heads do not divide width {embed_dim}"),
            });
        }
        Ok(Self {
            patch_size,
            embed_dim,
            depth: w.count_indexed("blocks"),
            num_heads,
            mlp_hidden: w.require_shape("blocks.0.mlp.fc1.weight", 2)?[0],
            grid: [side, side],
            in_channels,
            num_classes: w.require_shape("head.weight", 2)?[0],
            prefix_tokens,
            distilled,
            avg_pool: w.contains("fc_norm.weight"),
        })
    }
}

struct Attention {
    qkv: Linear,
    proj: Linear,
    num_heads: usize,
}

impl Attention {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let (b, n, c) = x.dims3()?;
        let head_dim = c / self.num_heads;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((b, n, 3, self.num_heads, head_dim))?
            .permute((2, 0, 3, 1, 4))?;
        let q = (qkv.get(0)?.contiguous()? * (head_dim as f64).powf(-0.5))?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let attn = softmax(&q.matmul(&k.t()?)?)?;
        let out = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, n, c))?;
        self.proj.forward(&out)
    }
}

struct Block {
    norm1: LayerNorm,
    attn: Attention,
    ls1: Option<Tensor>,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    ls2: Option<Tensor>,
}

impl Block {
    fn new(w: &Weights, name: &str, cfg: &VitConfig) -> Result<Self> {
        let d = cfg.embed_dim;
        let gamma = |i: usize| -> Result<Option<Tensor>> {
            let n = format!("{name}.ls{i}.gamma");
            if w.contains(&n) {
                Ok(Some(w.get(&n, &[d])?))
            } else {
                Ok(None)
            }
        };
        Ok(Self {
            norm1: w.layer_norm(&format!("{name}.norm1"), d, LN_EPS)?,
            attn: Attention {
                qkv: w.linear(&format!("{name}.attn.qkv"), 3 * d, d, true)?,
                proj: w.linear(&format!("{name}.attn.proj"), d, d, true)?,
                num_heads: cfg.num_heads,
            },
            ls1: gamma(1)?,
            norm2: w.layer_norm(&format!("{name}.norm2"), d, LN_EPS)?,
            fc1: w.linear(&format!("{name}.mlp.fc1"), cfg.mlp_hidden, d, true)?,
            fc2: w.linear(&format!("{name}.mlp.fc2"), d, cfg.mlp_hidden, true)?,
            ls2: gamma(2)?,
        })
    }

    /// The block as engine ops: `x + ls1·proj(attn(qkv(norm1(x))))`, then
    /// `x + ls2·fc2(gelu(fc1(norm2(x))))`. With `keep`, only the first `keep` tokens come
    /// out: they still attend to every token, and everything after attention is per token.
    fn compile(&self, p: &mut ProgramBuilder, x: Value, keep: Option<usize>) -> CResult<Value> {
        let h = p.layer_norm(x, &self.norm1)?;
        let qkv = p.token_linear(h, &self.attn.qkv, None, None)?;
        let h = p.attention(qkv, self.attn.num_heads, keep);
        let x = match keep {
            Some(count) => p.select_tokens(x, 0, count, false),
            None => x,
        };
        let x = p.token_linear(h, &self.attn.proj, self.ls1.as_ref(), Some(x))?;
        let h = p.layer_norm(x, &self.norm2)?;
        p.mlp(h, (&self.fc1, &self.fc2), self.ls2.as_ref(), Some(x))
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let scale = |y: Tensor, gamma: &Option<Tensor>| match gamma {
            Some(g) => y.broadcast_mul(g),
            None => Ok(y),
        };
        let x = (x + scale(self.attn.forward(&self.norm1.forward(x)?)?, &self.ls1)?)?;
        let mlp = self
            .fc2
            .forward(&gelu_exact(&self.fc1.forward(&self.norm2.forward(&x)?)?)?)?;
        x + scale(mlp, &self.ls2)?
    }
}

pub struct VisionTransformer {
    cfg: VitConfig,
    patch_embed: Conv2d,
    prefix: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    norm: Option<LayerNorm>,
    fc_norm: Option<LayerNorm>,
    head: Linear,
    head_dist: Option<Linear>,
    program: Option<Program>,
}

impl VisionTransformer {
    pub fn new(w: &Weights, cfg: &VitConfig) -> Result<Self> {
        let d = cfg.embed_dim;
        let p = cfg.patch_size;
        let patch_embed = w.conv(
            "patch_embed.proj",
            [d, cfg.in_channels, p, p],
            p,
            Padding::Symmetric(0),
            1,
            true,
        )?;
        let mut prefix = vec![w.get("cls_token", &[1, 1, d])?];
        if cfg.distilled {
            prefix.push(w.get("dist_token", &[1, 1, d])?);
        }
        let tokens = cfg.prefix_tokens + cfg.grid[0] * cfg.grid[1];
        let blocks = (0..cfg.depth)
            .map(|i| Block::new(w, &format!("blocks.{i}"), cfg))
            .collect::<Result<Vec<_>>>()?;
        let norm = if w.contains("norm.weight") {
            Some(w.layer_norm("norm", d, LN_EPS)?)
        } else {
            None
        };
        let fc_norm = if cfg.avg_pool {
            Some(w.layer_norm("fc_norm", d, LN_EPS)?)
        } else {
            None
        };
        let head_dist = if cfg.distilled {
            Some(w.linear("head_dist", cfg.num_classes, d, true)?)
        } else {
            None
        };
        let mut net = Self {
            cfg: cfg.clone(),
            patch_embed,
            prefix: Tensor::cat(&prefix, 1)?,
            pos_embed: w.get("pos_embed", &[1, tokens, d])?,
            blocks,
            norm,
            fc_norm,
            head: w.linear("head", cfg.num_classes, d, true)?,
            head_dist,
            program: None,
        };
        if engine::supports(&net.pos_embed) {
            net.program = Some(net.compile()?);
        }
        Ok(net)
    }

    /// The same network as engine ops. A class-token head reads only the prefix tokens, so
    /// the last block computes only their rows after attention, and the final norm runs
    /// on them alone: exact, and it skips the 196 patch tokens' share of the last block
    /// (about 6% of DeiT-S's FLOPs, forward and backward). An average-pooled head reads
    /// every token and gets the full network.
    fn compile(&self) -> CResult<Program> {
        let mut p = ProgramBuilder::new();
        let patches = p.conv(p.input(), &self.patch_embed, engine::Activation::None)?;
        let mut x = p.tokens(patches, &self.prefix, &self.pos_embed)?;
        let heads = if self.head_dist.is_some() { 2 } else { 1 };
        let keep_last = if self.fc_norm.is_some() {
            None
        } else {
            Some(heads)
        };
        let depth = self.blocks.len();
        for (i, block) in self.blocks.iter().enumerate() {
            let keep = if i + 1 == depth { keep_last } else { None };
            x = block.compile(&mut p, x, keep)?;
        }
        let prefix = self.cfg.prefix_tokens;
        if let Some(fc_norm) = &self.fc_norm {
            if let Some(norm) = &self.norm {
                x = p.layer_norm(x, norm)?;
            }
            let tokens = self.cfg.grid[0] * self.cfg.grid[1];
            let pooled = p.select_tokens(x, prefix, tokens, true);
            let pooled = p.layer_norm(pooled, fc_norm)?;
            let features = p.tokens_to_features(pooled);
            p.linear(features, &self.head)?;
            return p.finish();
        }
        // Without blocks, nothing has pruned the tokens yet.
        let mut tokens = if depth == 0 {
            p.select_tokens(x, 0, heads, false)
        } else {
            x
        };
        if let Some(norm) = &self.norm {
            tokens = p.layer_norm(tokens, norm)?;
        }
        let features = p.tokens_to_features(tokens);
        match &self.head_dist {
            Some(head_dist) => p.mean_of_heads(features, &[&self.head, head_dist])?,
            None => p.linear(features, &self.head)?,
        };
        p.finish()
    }
}

impl Network for VisionTransformer {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let b = x.dim(0)?;
        let patches = self
            .patch_embed
            .forward(x)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let prefix = self
            .prefix
            .broadcast_as((b, self.cfg.prefix_tokens, self.cfg.embed_dim))?;
        let mut x = Tensor::cat(&[prefix, patches], 1)?.broadcast_add(&self.pos_embed)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        if let Some(norm) = &self.norm {
            x = norm.forward(&x)?;
        }
        if let Some(fc_norm) = &self.fc_norm {
            let n = x.dim(1)? - self.cfg.prefix_tokens;
            let pooled = x.narrow(1, self.cfg.prefix_tokens, n)?.mean(1)?;
            return self.head.forward(&fc_norm.forward(&pooled)?);
        }
        let cls = self.head.forward(&x.narrow(1, 0, 1)?.squeeze(1)?)?;
        match &self.head_dist {
            // Distilled DeiT at inference: the mean of the class and distillation heads.
            Some(head_dist) => {
                let dist = head_dist.forward(&x.narrow(1, 1, 1)?.squeeze(1)?)?;
                (cls + dist)? / 2.0
            }
            None => Ok(cls),
        }
    }

    fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }
}
