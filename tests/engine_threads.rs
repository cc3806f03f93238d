//! The engine splits a batch into one shard per compute thread (`models::engine::parallel`).
//! Sharding changes where work runs, never what it computes: logits and input gradients on
//! one thread and on three (five images: uneven shards 2/2/1) agree. Its own process,
//! because it resizes the global compute pool.

mod common;

use blindspot::models::{
    LoadOptions, Normalization, Objective, compute_threads, load_classifier, set_compute_threads,
};
use candle_core::{Device, Tensor};
use common::shared;

fn images(batch: usize, size: usize) -> Tensor {
    let n = batch * 3 * size * size;
    let data: Vec<f32> = (0..n)
        .map(|i| 0.5 + 0.4 * ((i as f32) * 0.7311).sin())
        .collect();
    Tensor::from_vec(data, (batch, 3, size, size), &Device::Cpu).unwrap()
}

fn max_relative(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn sharded_batches_match_one_thread() {
    for (path, size, norm) in [
        ("weights/resnet20_cifar10.safetensors", 32, None),
        (
            "weights/tv_resnet_basic_1111.safetensors",
            64,
            Some(Normalization::identity(3)),
        ),
    ] {
        let opts = LoadOptions {
            input_size: Some([size, size]),
            normalization: norm,
            ..LoadOptions::default()
        };
        let model = load_classifier(&shared(path), &opts).unwrap();
        assert!(model.uses_native_kernels());
        let x = images(5, size);
        let objective = Objective::CrossEntropy(vec![0, 1, 2, 3, 4]);

        set_compute_threads(1);
        assert_eq!(compute_threads(), 1);
        let (l1, g1) = model.input_gradient(&x, &objective).unwrap();
        let f1 = model.forward(&x).unwrap();

        set_compute_threads(3);
        assert_eq!(compute_threads(), 3);
        let (l3, g3) = model.input_gradient(&x, &objective).unwrap();
        let f3 = model.forward(&x).unwrap();

        assert!(max_relative(&l3, &l1) < 1e-5, "{path}: logits");
        assert!(max_relative(&f3, &f1) < 1e-5, "{path}: forward");
        assert!(max_relative(&g3, &g1) < 1e-5, "{path}: gradient");
        // A second sharded call reuses the shards' workspaces and gives the same answer.
        let (_, again) = model.input_gradient(&x, &objective).unwrap();
        assert_eq!(max_relative(&again, &g3), 0.0, "{path}: repeat");
    }
}
