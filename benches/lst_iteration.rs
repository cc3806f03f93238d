//! Criterion benchmark of one LST iteration (forward + input gradient + forward) on the
//! standard layouts with seeded random weights; `blindspot bench` prints the same figures as
//! JSON. Heavy models are opt-in: BLINDSPOT_BENCH_MODELS=resnet20,resnet18,resnet50,efficientnet_lite0.

use blindspot::models::zoo::ZooModel;
use blindspot::models::{LoadOptions, Objective, classifier_from_checkpoint};
use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};

fn lst_iteration(c: &mut Criterion) {
    let wanted = std::env::var("BLINDSPOT_BENCH_MODELS").unwrap_or_else(|_| "resnet20".into());
    let mut group = c.benchmark_group("lst_iteration");
    group.sample_size(10);
    for name in wanted.split(',') {
        let Some(kind) = ZooModel::from_name(name.trim()) else {
            eprintln!("unknown model {name}");
            continue;
        };
        let model = classifier_from_checkpoint(
            kind.checkpoint().unwrap(),
            String::new(),
            &LoadOptions::default(),
        )
        .unwrap();
        for batch in [1usize, 8] {
            let size = kind.input_size();
            let x = Tensor::rand(0f32, 1f32, (batch, 3, size, size), &Device::Cpu).unwrap();
            let objective = Objective::CrossEntropy(vec![0; batch]);
            group.bench_function(format!("{}_{size}px_batch{batch}", kind.name()), |b| {
                b.iter(|| {
                    model.forward(&x).unwrap();
                    model.input_gradient(&x, &objective).unwrap();
                    model.forward(&x).unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lst_iteration);
criterion_main!(benches);
