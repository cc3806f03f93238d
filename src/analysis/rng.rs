//! Reproducible randomness (ALGORITHMS.md §0.4).
//!
//! Every random number of the analyses comes from a xoshiro256** stream keyed by
//! `(seed, tag, i, j)`, drawn on the host, so CPU and GPU runs consume identical draws.

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256StarStar;

/// The generator behind every stream.
pub type StreamRng = Xoshiro256StarStar;

/// Stream tag: LST initial noise, `(i, j) = (pair_id, 0)`.
pub const LST_NOISE: u64 = 1;
/// Stream tag: path-width directions, `(i, j) = (pair_id, log_index)`.
pub const WIDTH_DIRS: u64 = 2;
/// Stream tag: full-evaluation derangements, `(i, j) = (round, attempt)`.
pub const DERANGEMENT: u64 = 3;
/// Stream tag: sample selection.
pub const SAMPLE_SELECT: u64 = 4;
/// Stream tag: plot jitter.
pub const PLOT_JITTER: u64 = 5;

/// The SplitMix64 finaliser, in wrapping u64 arithmetic.
pub fn mix(mut z: u64) -> u64 {
    z ^= z >> 30;
    z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^= z >> 27;
    z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 64-bit key of `stream(seed, tag, i, j)`: mix(mix(mix(mix(seed) ^ tag) ^ i) ^ j).
pub fn stream_key(seed: u64, tag: u64, i: u64, j: u64) -> u64 {
    mix(mix(mix(mix(seed) ^ tag) ^ i) ^ j)
}

/// A xoshiro256** generator whose state is four successive SplitMix64 outputs from the key.
pub fn stream(seed: u64, tag: u64, i: u64, j: u64) -> StreamRng {
    Xoshiro256StarStar::seed_from_u64(stream_key(seed, tag, i, j))
}

/// A u32 draw: the upper 32 bits of `next_u64`.
pub fn next_u32(rng: &mut impl RngCore) -> u32 {
    (rng.next_u64() >> 32) as u32
}

/// Uniform on (0, 1): ((u32 >> 8) + 0.5)·2⁻²⁴, rounded once to f32.
///
/// The exact value has 25 significant bits, so the rounding to f32 can give exactly 1.0
/// (for u32 >> 8 = 2²⁴ − 1, a tie that rounds to even); it never gives 0.
pub fn uniform01(rng: &mut impl RngCore) -> f32 {
    let k = next_u32(rng) >> 8;
    ((f64::from(k) + 0.5) * (1.0 / 16_777_216.0)) as f32
}

/// Uniform on [lo, hi): lo + (hi − lo)·u, in f32.
pub fn uniform(rng: &mut impl RngCore, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * uniform01(rng)
}

/// Integer in [0, k]: min(⌊u·(k+1)⌋, k).
pub fn uniform_int(rng: &mut impl RngCore, k: usize) -> usize {
    let u = f64::from(uniform01(rng));
    ((u * (k as f64 + 1.0)).floor() as usize).min(k)
}

/// Standard normals by Box–Muller on consecutive uniforms, computed in f64 and cast to f32.
/// Each pair (u1, u2) emits ρ·cos 2πu2 and then ρ·sin 2πu2; the second value is kept for the
/// next call, so a long fill consumes the stream exactly as one row-major tensor fill would.
#[derive(Clone, Debug)]
pub struct Normals<R> {
    rng: R,
    spare: Option<f32>,
}

impl<R: RngCore> Normals<R> {
    pub fn new(rng: R) -> Self {
        Self { rng, spare: None }
    }

    pub fn next_normal(&mut self) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = f64::from(uniform01(&mut self.rng));
        let u2 = f64::from(uniform01(&mut self.rng));
        let rho = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        self.spare = Some((rho * angle.sin()) as f32);
        (rho * angle.cos()) as f32
    }

    /// Fills `out` in order (row-major for a flattened tensor).
    pub fn fill(&mut self, out: &mut [f32]) {
        for v in out {
            *v = self.next_normal();
        }
    }
}

/// Fills `out` in order with uniforms on [lo, hi).
pub fn fill_uniform(rng: &mut impl RngCore, lo: f32, hi: f32, out: &mut [f32]) {
    for v in out {
        *v = uniform(rng, lo, hi);
    }
}

/// A uniform permutation of 0..n by Fisher–Yates: for k = n−1 down to 1, swap element k with
/// element `uniform_int(k)`.
pub fn permutation(rng: &mut impl RngCore, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for k in (1..n).rev() {
        let j = uniform_int(rng, k);
        p.swap(k, j);
    }
    p
}

/// The derangement π_r of round `round` (§1.3): permutations drawn from
/// stream(seed, DERANGEMENT, round, attempt) for attempt = 0, 1, … until one has no fixed
/// point. `None` for n < 2, where no derangement exists.
pub fn derangement(seed: u64, round: u64, n: usize) -> Option<Vec<usize>> {
    if n < 2 {
        return None;
    }
    (0u64..)
        .map(|attempt| permutation(&mut stream(seed, DERANGEMENT, round, attempt), n))
        .find(|p| p.iter().enumerate().all(|(i, &pi)| i != pi))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHI: u64 = 0x9e37_79b9_7f4a_7c15;

    /// xoshiro256** written out from Blackman & Vigna's reference C code.
    fn xoshiro_next(s: &mut [u64; 4]) -> u64 {
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    #[test]
    fn mix_matches_splitmix64_reference() {
        // First output of splitmix64.c seeded with 1477776061723855037 (state += φ, then mix).
        assert_eq!(
            mix(1_477_776_061_723_855_037u64.wrapping_add(PHI)),
            1_985_237_415_132_408_290
        );
        assert_eq!(mix(0), 0);
        // Hand computation of mix(1), step by step.
        let mut z: u64 = 1;
        z ^= z >> 30;
        z = z.wrapping_mul(0xbf58476d1ce4e5b9);
        z ^= z >> 27;
        z = z.wrapping_mul(0x94d049bb133111eb);
        z ^= z >> 31;
        assert_eq!(mix(1), z);
    }

    #[test]
    fn hand_written_xoshiro_matches_reference_vector() {
        // Reference values of xoshiro256starstar.c for the state (1, 2, 3, 4).
        let mut s = [1u64, 2, 3, 4];
        let got: Vec<u64> = (0..4).map(|_| xoshiro_next(&mut s)).collect();
        assert_eq!(got, [11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn stream_is_xoshiro_seeded_by_four_splitmix_outputs() {
        let key = stream_key(0, LST_NOISE, 7, 2);
        assert_eq!(key, mix(mix(mix(mix(0) ^ 1) ^ 7) ^ 2));
        let mut state = [0u64; 4];
        for (k, s) in state.iter_mut().enumerate() {
            *s = mix(key.wrapping_add((k as u64 + 1).wrapping_mul(PHI)));
        }
        let mut rng = stream(0, LST_NOISE, 7, 2);
        for _ in 0..16 {
            assert_eq!(rng.next_u64(), xoshiro_next(&mut state));
        }
    }

    #[test]
    fn streams_differ_by_every_key_part() {
        let first = |s, t, i, j| stream(s, t, i, j).next_u64();
        let base = first(0, 1, 2, 3);
        assert_ne!(base, first(1, 1, 2, 3));
        assert_ne!(base, first(0, 2, 2, 3));
        assert_ne!(base, first(0, 1, 3, 3));
        assert_ne!(base, first(0, 1, 2, 4));
        assert_eq!(base, first(0, 1, 2, 3));
    }

    /// A generator that returns fixed u64 values, to check the draw formulas by hand.
    struct Fixed(Vec<u64>);
    impl RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0.remove(0)
        }
        fn fill_bytes(&mut self, _: &mut [u8]) {
            unimplemented!()
        }
    }

    #[test]
    fn uniform_formula_by_hand() {
        let mut r = Fixed(vec![
            0,
            u64::MAX,
            0x8000_0000_0000_0000,
            0xFFFF_FE00_0000_0000,
        ]);
        assert_eq!(uniform01(&mut r), 0.5 / 16_777_216.0);
        // (2^24 - 1 + 0.5) / 2^24 = 1 - 2^-25 ties to 1.0 in f32.
        assert_eq!(uniform01(&mut r), 1.0);
        assert_eq!(uniform01(&mut r), (8_388_608.5f64 / 16_777_216.0) as f32);
        assert_eq!(uniform01(&mut r), (16_777_214.5f64 / 16_777_216.0) as f32);
        let mut r = Fixed(vec![0x8000_0000_0000_0000, u64::MAX]);
        // 2^23 + 0.5 ties to the even 2^23, so u = 0.5 exactly.
        assert_eq!(uniform(&mut r, -2.0, 2.0), 0.0);
        assert_eq!(uniform(&mut r, -2.0, 2.0), 2.0);
        let mut r = Fixed(vec![0, u64::MAX, 0x8000_0000_0000_0000]);
        assert_eq!(uniform_int(&mut r, 4), 0);
        assert_eq!(uniform_int(&mut r, 4), 4); // u = 1.0 is caught by the min
        assert_eq!(uniform_int(&mut r, 4), 2);
    }

    #[test]
    fn uniforms_stay_in_range() {
        let mut rng = stream(3, PLOT_JITTER, 0, 0);
        for _ in 0..10_000 {
            let u = uniform01(&mut rng);
            assert!(u > 0.0 && u <= 1.0);
            let x = uniform(&mut rng, -0.25, 0.25);
            assert!((-0.25..=0.25).contains(&x));
            assert!(uniform_int(&mut rng, 6) <= 6);
        }
    }

    #[test]
    fn box_muller_by_hand_and_order() {
        let mut rng = stream(5, WIDTH_DIRS, 1, 2);
        let mut copy = rng.clone();
        let mut normals = Normals::new(rng.clone());
        let u1 = f64::from(uniform01(&mut copy));
        let u2 = f64::from(uniform01(&mut copy));
        let rho = (-2.0 * u1.ln()).sqrt();
        let a = normals.next_normal();
        let b = normals.next_normal();
        assert_eq!(a, (rho * (std::f64::consts::TAU * u2).cos()) as f32);
        assert_eq!(b, (rho * (std::f64::consts::TAU * u2).sin()) as f32);
        // A fill of odd length continues the pairs across calls.
        let mut n1 = Normals::new(rng.clone());
        let mut whole = vec![0f32; 10];
        n1.fill(&mut whole);
        let mut n2 = Normals::new(rng.clone());
        let mut parts = vec![0f32; 10];
        n2.fill(&mut parts[..3]);
        n2.fill(&mut parts[3..]);
        assert_eq!(whole, parts);
        // Moments of many draws.
        let mut many = vec![0f32; 100_000];
        Normals::new(&mut rng).fill(&mut many);
        let mean = many.iter().map(|&v| f64::from(v)).sum::<f64>() / many.len() as f64;
        let var = many.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / many.len() as f64;
        assert!(mean.abs() < 0.02, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        assert!(many.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn fisher_yates_by_hand() {
        // n = 3: k = 2 swaps with uniform_int(2), then k = 1 with uniform_int(1).
        // u = 0.5 gives ⌊u·3⌋ = 1 and ⌊u·2⌋ = 1.
        let mut r = Fixed(vec![0x8000_0000_0000_0000, 0x8000_0000_0000_0000]);
        assert_eq!(permutation(&mut r, 3), vec![0, 2, 1]);
        // u = 2^-25 gives 0 twice: swap(2, 0) then swap(1, 0).
        let mut r = Fixed(vec![0, 0]);
        assert_eq!(permutation(&mut r, 3), vec![1, 2, 0]);
        assert!(permutation(&mut r, 0).is_empty());
        assert_eq!(permutation(&mut r, 1), vec![0]);
    }

    #[test]
    fn permutations_are_permutations_and_derangements_have_no_fixed_point() {
        for n in 2..20 {
            let mut p = permutation(&mut stream(1, SAMPLE_SELECT, n as u64, 0), n);
            p.sort_unstable();
            assert_eq!(p, (0..n).collect::<Vec<_>>());
            for round in 0..5 {
                let d = derangement(9, round, n).expect("n >= 2");
                assert!(d.iter().enumerate().all(|(i, &x)| i != x));
                let mut s = d.clone();
                s.sort_unstable();
                assert_eq!(s, (0..n).collect::<Vec<_>>());
                assert_eq!(derangement(9, round, n), Some(d));
            }
        }
        assert_eq!(derangement(0, 0, 1), None);
        assert_eq!(derangement(0, 0, 2), Some(vec![1, 0]));
        // The accepted permutation is the first fixed-point-free attempt.
        let n = 6;
        let d = derangement(4, 2, n).expect("n >= 2");
        let first_ok = (0u64..)
            .map(|a| permutation(&mut stream(4, DERANGEMENT, 2, a), n))
            .find(|p| p.iter().enumerate().all(|(i, &x)| i != x));
        assert_eq!(Some(d), first_ok);
    }
}
