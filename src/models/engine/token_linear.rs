//! A vision transformer's per-token linear layers, and its MLP, `fc2(GELU(fc1(x)))`, as one op.
//!
//! Tokens are rows, `[rows][width]` (see `tokens`), so a layer is one product over all the
//! batch's tokens. With AVX-512 the weights are packed once (`packed`); without, the products
//! go through the `gemm` crate. The MLP is one op so GELU finishes `fc1`'s tiles while they
//! are in cache, and the GELU derivative (which a recording pass keeps instead of the
//! pre-activations) finishes the tiles of `fc2`'s VJP: the hidden layer, four times the
//! width and larger than L2, is written once and read once per pass. As separate ops, GELU
//! and its VJP were two more passes over it, 5% of a DeiT-S step at batch 8.

use rayon::prelude::*;

use super::gemm::{View, matmul_strided};
use super::kernels::sequential;
use super::packed::{Epilogue, PackedMatrix};

/// A per-token linear layer's weights, in the layouts its two products read.
#[derive(Debug)]
pub(crate) enum TokenWeights {
    /// Packed once for the AVX-512 kernels (`packed.rs`): `W` `[out × inp]` for the forward
    /// product and `Wᵀ` `[inp × out]` for the VJP, so no call repacks them.
    Packed {
        forward: PackedMatrix,
        backward: PackedMatrix,
    },
    /// For the `gemm` crate, without AVX-512: `weight_t` `[inp][out]` (PyTorch's weight
    /// transposed) and `weight` `[out][inp]`.
    Plain {
        weight_t: Vec<f32>,
        weight: Vec<f32>,
    },
}

impl TokenWeights {
    /// From `weight_t` `[inp][out]`.
    fn new(weight_t: Vec<f32>, out: usize, inp: usize) -> Self {
        let forward = PackedMatrix::new(out, inp, |o, i| weight_t[i * out + o]);
        let backward = PackedMatrix::new(inp, out, |i, o| weight_t[i * out + o]);
        if let (Some(forward), Some(backward)) = (forward, backward) {
            return Self::Packed { forward, backward };
        }
        Self::plain(weight_t, out, inp)
    }

    /// The `gemm` crate's layouts (what `new` falls back to without AVX-512).
    fn plain(weight_t: Vec<f32>, out: usize, inp: usize) -> Self {
        let mut weight = vec![0f32; out * inp];
        for (i, row) in weight_t.chunks(out).enumerate() {
            for (o, &w) in row.iter().enumerate() {
                weight[o * inp + i] = w;
            }
        }
        Self::Plain { weight_t, weight }
    }
}

/// A linear layer applied to every token.
#[derive(Debug)]
pub(crate) struct TokenLinear {
    weights: TokenWeights,
    bias: Option<Vec<f32>>,
    pub out: usize,
    pub inp: usize,
}

impl TokenLinear {
    /// From PyTorch's weight transposed, `weight_t` `[inp][out]`, and the bias `[out]`.
    pub fn new(weight_t: Vec<f32>, bias: Option<Vec<f32>>, out: usize, inp: usize) -> Self {
        Self {
            weights: TokenWeights::new(weight_t, out, inp),
            bias,
            out,
            inp,
        }
    }

    /// `y[rows][out] = x[rows][inp] · W + b`, then `epilogue`.
    ///
    /// Without AVX-512 this is `yᵀ = Wᵀ · xᵀ` through the `gemm` crate: every operand and the
    /// destination are then column-major, the crate's native orientation, and the long side
    /// of the product is the layer's width (a multiple of the 64-row micro-tile) rather than
    /// the 197 tokens. On DeiT-S at batch 1 that took an LST iteration from 104.5 to 97.7 ms
    /// (700.8 to 683.3 at batch 8) against the row-major `x · W`, measured back to back. The
    /// packed path is the same product with the weights packed once.
    pub fn forward(&self, rows: usize, x: &[f32], y: &mut [f32], epilogue: Epilogue<'_>) {
        let (out, inp) = (self.out, self.inp);
        let weight_t = match &self.weights {
            TokenWeights::Packed { forward, .. } => {
                forward.apply(rows, x, self.bias.as_deref(), y, false, epilogue);
                return;
            }
            TokenWeights::Plain { weight_t, .. } => weight_t,
        };
        plain_product(weight_t, (out, inp, rows), x, y, false);
        if let Some(bias) = self.bias.as_deref() {
            let add = |y: &mut [f32]| y.iter_mut().zip(bias).for_each(|(y, &b)| *y += b);
            if sequential(y.len()) {
                y.chunks_mut(out).for_each(add);
            } else {
                y.par_chunks_mut(out).for_each(add);
            }
        }
        epilogue.finish(&mut y[..rows * out]);
    }

    /// `dx[rows][inp] (+)= gy[rows][out] · Wᵀ`, as `dxᵀ = W · gyᵀ` (column-major, as above),
    /// then `epilogue` (on the sum, where accumulating).
    pub fn vjp(
        &self,
        rows: usize,
        gy: &[f32],
        dx: &mut [f32],
        accumulate: bool,
        epilogue: Epilogue<'_>,
    ) {
        let (out, inp) = (self.out, self.inp);
        let weight = match &self.weights {
            TokenWeights::Packed { backward, .. } => {
                backward.apply(rows, gy, None, dx, accumulate, epilogue);
                return;
            }
            TokenWeights::Plain { weight, .. } => weight,
        };
        plain_product(weight, (inp, out, rows), gy, dx, accumulate);
        epilogue.finish(&mut dx[..rows * inp]);
    }
}

/// `dst[rows][m] (+)= src[rows][k] · a`, for `a` `[k][m]`, as `dstᵀ = aᵀ · srcᵀ` through the
/// `gemm` crate (see `TokenLinear::forward` for why column-major).
fn plain_product(
    a: &[f32],
    (m, k, rows): (usize, usize, usize),
    src: &[f32],
    dst: &mut [f32],
    accumulate: bool,
) {
    let (a, src) = (View::transposed(a, m), View::transposed(src, k));
    matmul_strided(m, rows, k, dst, (1, m), accumulate, a, src);
}

/// A transformer block's MLP, `fc2(GELU(fc1(x)))`, with exact (erf) GELU as PyTorch's
/// `nn.GELU()` and timm's default.
#[derive(Debug)]
pub(crate) struct Mlp {
    pub fc1: TokenLinear,
    pub fc2: TokenLinear,
}

impl Mlp {
    /// Width of the hidden layer.
    pub fn hidden(&self) -> usize {
        self.fc1.out
    }

    /// `y[rows][out]` for `x[rows][inp]`, through `hidden` `[rows][hidden]` scratch. With
    /// `derivative` (as large as `hidden`), also GELU' at every hidden unit, which `vjp` reads.
    /// `finish` applies to the output (a residual connection's `Epilogue::Add`).
    pub fn forward(
        &self,
        rows: usize,
        x: &[f32],
        hidden: &mut [f32],
        derivative: Option<&mut [f32]>,
        (y, finish): (&mut [f32], Epilogue<'_>),
    ) {
        self.fc1
            .forward(rows, x, hidden, Epilogue::Gelu { derivative });
        self.fc2.forward(rows, hidden, y, finish);
    }

    /// `dx (+)= d y / d x` applied to `gy`, from the `derivative` a recording `forward` kept;
    /// `hidden` is `[rows][hidden]` scratch.
    pub fn vjp(
        &self,
        rows: usize,
        gy: &[f32],
        derivative: &[f32],
        hidden: &mut [f32],
        dx: &mut [f32],
        accumulate: bool,
    ) {
        self.fc2
            .vjp(rows, gy, hidden, false, Epilogue::Scale(derivative));
        self.fc1.vjp(rows, hidden, dx, accumulate, Epilogue::None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(len: usize, f: f32) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * f).sin()).collect()
    }

    fn plain(weight_t: Vec<f32>, bias: Option<Vec<f32>>, out: usize, inp: usize) -> TokenLinear {
        TokenLinear {
            weights: TokenWeights::plain(weight_t, out, inp),
            bias,
            out,
            inp,
        }
    }

    /// The packed path (AVX-512) and the `gemm` crate's path compute the same products and
    /// epilogues, so a machine without AVX-512 runs what this one checks.
    #[test]
    fn packed_and_plain_token_linear_agree() {
        let (out, inp, rows) = (72, 40, 9);
        let weight_t = wave(inp * out, 0.37);
        let bias = wave(out, 1.3);
        let x = wave(rows * inp, 0.71);
        let gy = wave(rows * out, 0.53);
        let packed = TokenLinear::new(weight_t.clone(), Some(bias.clone()), out, inp);
        let plain = plain(weight_t, Some(bias), out, inp);
        let run = |l: &TokenLinear| {
            let mut y = vec![0f32; rows * out];
            l.forward(rows, &x, &mut y, Epilogue::None);
            let mut dx = vec![1f32; rows * inp];
            l.vjp(rows, &gy, &mut dx, true, Epilogue::None);
            let mut g = vec![0f32; rows * out];
            let mut d = vec![0f32; rows * out];
            let gelu = Epilogue::Gelu {
                derivative: Some(&mut d),
            };
            l.forward(rows, &x, &mut g, gelu);
            let mut scaled = vec![0f32; rows * inp];
            l.vjp(rows, &gy, &mut scaled, false, Epilogue::Scale(&x));
            [y, dx, g, d, scaled]
        };
        let (a, b) = (run(&packed), run(&plain));
        for (part, (a, b)) in a.iter().zip(&b).enumerate() {
            for (p, q) in a.iter().zip(b) {
                assert!((p - q).abs() < 1e-4, "part {part}: {p} vs {q}");
            }
            assert!(
                a.iter().any(|v| v.abs() > 0.1),
                "part {part}: a product that is not trivially zero"
            );
        }
    }

    /// The fused MLP against its three steps done one at a time in f64.
    #[test]
    fn mlp_matches_its_steps_in_f64() {
        let (inp, hidden, out, rows) = (24, 80, 16, 7);
        let (w1, b1) = (wave(inp * hidden, 0.29), wave(hidden, 0.9));
        let (w2, b2) = (wave(hidden * out, 0.41), wave(out, 1.7));
        let x = wave(rows * inp, 0.63);
        let gy = wave(rows * out, 0.47);
        let gelu = |v: f64| 0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2));
        let gelu_d = |v: f64| {
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            0.5 * (1.0 + libm::erf(v / std::f64::consts::SQRT_2)) + v * pdf
        };
        // pre[r][h], y[r][o], and dx[r][i] = Σ_h (Σ_o gy[r][o] w2[h][o]) gelu'(pre[r][h]) w1[i][h].
        let pre: Vec<f64> = (0..rows * hidden)
            .map(|at| {
                let (r, h) = (at / hidden, at % hidden);
                b1[h] as f64
                    + (0..inp)
                        .map(|i| x[r * inp + i] as f64 * w1[i * hidden + h] as f64)
                        .sum::<f64>()
            })
            .collect();
        for mlp in [
            Mlp {
                fc1: TokenLinear::new(w1.clone(), Some(b1.clone()), hidden, inp),
                fc2: TokenLinear::new(w2.clone(), Some(b2.clone()), out, hidden),
            },
            Mlp {
                fc1: plain(w1.clone(), Some(b1.clone()), hidden, inp),
                fc2: plain(w2.clone(), Some(b2.clone()), out, hidden),
            },
        ] {
            let mut scratch = vec![0f32; rows * hidden];
            let mut derivative = vec![0f32; rows * hidden];
            let mut y = vec![0f32; rows * out];
            let residual = wave(rows * out, 0.83);
            let finish = Epilogue::Add(&residual);
            mlp.forward(
                rows,
                &x,
                &mut scratch,
                Some(&mut derivative),
                (&mut y, finish),
            );
            let mut dx = vec![0.5f32; rows * inp];
            mlp.vjp(rows, &gy, &derivative, &mut scratch, &mut dx, true);
            for r in 0..rows {
                for o in 0..out {
                    let want = (b2[o] + residual[r * out + o]) as f64
                        + (0..hidden)
                            .map(|h| gelu(pre[r * hidden + h]) * w2[h * out + o] as f64)
                            .sum::<f64>();
                    let got = y[r * out + o] as f64;
                    assert!((got - want).abs() < 1e-4, "y[{r}][{o}] {got} vs {want}");
                }
                for i in 0..inp {
                    let want = 0.5
                        + (0..hidden)
                            .map(|h| {
                                let g: f64 = (0..out)
                                    .map(|o| gy[r * out + o] as f64 * w2[h * out + o] as f64)
                                    .sum();
                                g * gelu_d(pre[r * hidden + h]) * w1[i * hidden + h] as f64
                            })
                            .sum::<f64>();
                    let got = dx[r * inp + i] as f64;
                    assert!((got - want).abs() < 1e-4, "dx[{r}][{i}] {got} vs {want}");
                }
            }
        }
    }
}
