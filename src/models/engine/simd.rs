//! Runs a loop compiled for the widest vector instructions this CPU has.
//!
//! The crate is built for baseline x86-64 (SSE2), so plain loops vectorise 4 floats wide. The
//! `gemm` crate picks AVX-512 kernels at run time; `dispatch` does the same for our
//! elementwise loops: the closure is inlined into a function compiled with the target's
//! features, chosen once per call by `is_x86_feature_detected!` (a cached load).

/// Calls `f`, inlined into a copy compiled for AVX-512F or AVX2+FMA when the CPU has them.
#[inline(always)]
pub(crate) fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
