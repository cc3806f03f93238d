//! No per-step allocation growth in the engine over a 400-step run. Alone in its test binary,
//! because it reads the process's resident set, which tests on other threads would move.

mod common;

use blindspot::models::{LoadOptions, Objective, load_classifier};
use candle_core::{Device, Tensor};
use common::shared;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// 400 LST-like steps (gradient, then a forward) at a fixed batch: the engine's workspace is
/// the same size after the first step as after the last, and so, within allocator noise, is
/// the process.
#[test]
fn no_allocation_growth_over_400_steps() {
    let opts = LoadOptions {
        input_size: Some([32, 32]),
        ..LoadOptions::default()
    };
    let model = load_classifier(&shared("weights/resnet20_cifar10.safetensors"), &opts).unwrap();
    assert!(model.uses_native_kernels());
    let x = Tensor::rand(0.1f32, 0.9f32, (2, 3, 32, 32), &Device::Cpu).unwrap();
    let objective = Objective::CrossEntropy(vec![1, 2]);
    let step = || {
        let (_, g) = model.input_gradient(&x, &objective).unwrap();
        let _ = model
            .forward(&(&x + g.affine(1e-3, 0.0).unwrap()).unwrap())
            .unwrap();
    };
    for _ in 0..10 {
        step();
    }
    let (held, rss) = (model.workspace_bytes(), rss_bytes());
    assert!(held > 0);
    for _ in 0..390 {
        step();
    }
    assert_eq!(model.workspace_bytes(), held, "workspace grew");
    let grown = rss_bytes().saturating_sub(rss);
    assert!(grown < 16 << 20, "RSS grew by {grown} bytes over 390 steps");
}
