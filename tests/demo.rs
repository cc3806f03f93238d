//! The embedded default: the shipped demo models and gallery (weights/, assets/gallery/),
//! checked on freshly generated held-out images, and the trainer's smoke run.

use std::process::Command;

use blindspot::analysis::pgd::PgdConfig;
use blindspot::demo::DemoModel;
use blindspot::demo::generator::CLASSES;
use blindspot::demo::train::{
    TrainConfig, held_out_accuracy, save_checkpoint, shapes_batch, train_on_shapes,
};
use blindspot::models::{LoadOptions, load_classifier};
use candle_core::Device;

#[test]
fn shipped_standard_model_meets_its_accuracy_floor() {
    let standard = DemoModel::Standard.load(&LoadOptions::default()).unwrap();
    assert_eq!(standard.spec().class_names, CLASSES.to_vec());
    assert_eq!(standard.spec().input_size, [32, 32]);
    let (clean, _) = held_out_accuracy(&standard, 2000, None, None).unwrap();
    eprintln!("standard demo model, held-out top-1 on 2000 fresh images: {clean:.4}");
    assert!(clean >= 0.97, "standard demo model: {clean}");
}

/// The robust model (L2 PGD fine-tuning of the standard one at eps 1.0): its accuracy floor,
/// and its accuracy under the same attack far above the standard model's.
#[test]
fn shipped_robust_model_meets_its_floor_and_resists_pgd() {
    let standard = DemoModel::Standard.load(&LoadOptions::default()).unwrap();
    let robust = DemoModel::Robust.load(&LoadOptions::default()).unwrap();
    let (rob_clean, _) = held_out_accuracy(&robust, 2000, None, None).unwrap();
    assert!(rob_clean >= 0.85, "robust demo model: {rob_clean}");
    let attack = PgdConfig {
        epsilon: 1.0,
        steps: 10,
        ..PgdConfig::default()
    };
    let (_, std_adv) = held_out_accuracy(&standard, 300, Some(&attack), None).unwrap();
    let (_, rob_adv) = held_out_accuracy(&robust, 300, Some(&attack), None).unwrap();
    let (std_adv, rob_adv) = (std_adv.unwrap(), rob_adv.unwrap());
    eprintln!(
        "held-out: robust clean {rob_clean:.4}; under L2 PGD eps 1: robust {rob_adv:.4}, standard {std_adv:.4}"
    );
    assert!(
        rob_adv > std_adv + 0.3,
        "robust {rob_adv} vs standard {std_adv}"
    );
}

#[test]
fn traverse_without_weights_turns_a_gallery_circle_into_the_star_and_keeps_circle() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("circle_star");
    let o = Command::new(env!("CARGO_BIN_EXE_blindspot"))
        .args([
            "traverse",
            "--source",
            "gallery:circle_1",
            "--target",
            "gallery:star_1",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let p0 = run["p0"].as_f64().unwrap();
    let fin = &run["final"];
    eprintln!("circle -> star: p0 {p0}, final {fin}");
    assert_eq!(run["source"]["class_name"], "circle");
    assert_eq!(fin["predicted_class"], 0, "still a circle to the model");
    let pthresh = run["config"]["pthresh"].as_f64().unwrap();
    assert!(p0 - fin["source_confidence"].as_f64().unwrap() < pthresh);
    assert!(fin["l2_normalized"].as_f64().unwrap() <= 0.05, "{fin}");
    assert!(out.join("path_strip.png").is_file());
}

#[test]
fn one_epoch_smoke_training_saves_a_model_the_loader_reads_identically() {
    let cfg = TrainConfig {
        images_per_epoch: 128,
        epochs: 1,
        batch_size: 32,
        widths: [8, 16, 32],
        ..TrainConfig::standard()
    };
    let mut epochs = Vec::new();
    let trained = train_on_shapes(&cfg, &Device::Cpu, |s| {
        epochs.push(s.clone());
        true
    })
    .unwrap();
    assert_eq!(epochs.len(), 1);
    assert!(epochs[0].loss.is_finite() && epochs[0].loss > 0.0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smoke.safetensors");
    save_checkpoint(&trained, &cfg, "smoke", &path).unwrap();
    // The training network (eval mode) and the inference code give the same logits.
    let model = load_classifier(&path, &LoadOptions::default()).unwrap();
    assert_eq!(model.spec().architecture, "cifar_resnet8");
    assert_eq!(model.spec().class_name(3), "star");
    let (x, _) = shapes_batch(99, 0, 8, 32, &Device::Cpu).unwrap();
    let ours = model.forward(&x).unwrap();
    let theirs = trained.net.forward(&x, false).unwrap();
    let diff = (ours - theirs)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-4, "inference and training nets differ by {diff}");

    // Same seed, same training: bit-identical weights.
    let again = train_on_shapes(&cfg, &Device::Cpu, |_| true).unwrap();
    let path2 = dir.path().join("smoke2.safetensors");
    save_checkpoint(&again, &cfg, "smoke", &path2).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&path2).unwrap()
    );
}

/// `--init` starts from the given checkpoint: before any step the training network holds its
/// tensors exactly, and a checkpoint of another layout is refused with the tensor named.
#[test]
fn init_starts_training_from_the_given_checkpoint() {
    use blindspot::demo::train::{TrainNet, state_dict};
    use blindspot::models::checkpoint::read_checkpoint;
    let standard = std::path::PathBuf::from("weights/demo-standard.safetensors");
    let cfg = TrainConfig {
        init: Some(standard.clone()),
        ..TrainConfig::robust()
    };
    let varmap = candle_nn::VarMap::new();
    TrainNet::new(&varmap, &cfg, CLASSES.len(), &Device::Cpu).unwrap();
    let stored = read_checkpoint(&standard).unwrap();
    let loaded = state_dict(&varmap).unwrap();
    assert_eq!(loaded.len(), stored.tensors.len());
    for (name, t) in &loaded {
        let s = &stored.tensors[name];
        let same = (t - s)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(same, 0.0, "{name}");
    }
    // Adversarial fine-tuning from it is deterministic too: two short runs, identical bytes.
    let short = TrainConfig {
        images_per_epoch: 64,
        epochs: 1,
        batch_size: 32,
        pgd: Some(PgdConfig {
            epsilon: 1.0,
            steps: 2,
            ..PgdConfig::default()
        }),
        ..cfg.clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for k in 0..2 {
        let trained = train_on_shapes(&short, &Device::Cpu, |_| true).unwrap();
        let path = dir.path().join(format!("robust{k}.safetensors"));
        save_checkpoint(&trained, &short, "robust smoke", &path).unwrap();
        bytes.push(std::fs::read(&path).unwrap());
    }
    assert_eq!(bytes[0], bytes[1]);
    let wider = TrainConfig {
        widths: [32, 64, 128],
        ..cfg
    };
    let err = TrainNet::new(
        &candle_nn::VarMap::new(),
        &wider,
        CLASSES.len(),
        &Device::Cpu,
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("demo-standard.safetensors") && err.contains("conv1.weight"),
        "{err}"
    );
}

/// The pool of a comparison (§1.3) holds only images that every model of it classifies
/// correctly with confidence above 0.6, so both demo models are evaluated on one pool.
#[test]
fn a_comparison_pool_satisfies_every_model() {
    use blindspot::eval::{PoolOrder, select_pool};
    let standard = DemoModel::Standard.load(&LoadOptions::default()).unwrap();
    let robust = DemoModel::Robust.load(&LoadOptions::default()).unwrap();
    let gallery = blindspot::images::list_dataset(std::path::Path::new("assets/gallery")).unwrap();
    let pool = |a, b: &[_]| select_pool(a, b, &gallery.images, 10, 0.6, PoolOrder::Shuffled, 0);
    let alone = pool(&standard, &[]).unwrap();
    let both = pool(&standard, &[&robust]).unwrap();
    let swapped = pool(&robust, &[&standard]).unwrap();
    // In data-set order (§1.3) the pool is each class's first image that both models get right.
    let ordered = select_pool(
        &standard,
        &[&robust],
        &gallery.images,
        10,
        0.6,
        PoolOrder::DataSet,
        0,
    )
    .unwrap();
    for image in &ordered {
        let first_right = gallery
            .images
            .iter()
            .position(|i| i.label == image.label as usize)
            .unwrap();
        let at = gallery
            .images
            .iter()
            .position(|i| i.path.display().to_string() == image.path)
            .unwrap();
        // Only images of its class that a model got wrong (or below 0.6) come before it.
        assert!(at >= first_right);
    }
    let order: Vec<usize> = ordered
        .iter()
        .map(|p| {
            gallery
                .images
                .iter()
                .position(|i| i.path.display().to_string() == p.path)
                .unwrap()
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "taken in data-set order: {order:?}"
    );
    let paths =
        |p: &[blindspot::eval::PoolImage]| p.iter().map(|i| i.path.clone()).collect::<Vec<_>>();
    assert_eq!(
        paths(&both),
        paths(&swapped),
        "one pool whichever model leads"
    );
    assert!(both.len() >= 2 && both.len() <= alone.len());
    for image in &both {
        for model in [&standard, &robust] {
            let x =
                blindspot::run::InputImage::load(std::path::Path::new(&image.path), model).unwrap();
            let p = model
                .probabilities(&x.pixels.unsqueeze(0).unwrap())
                .unwrap();
            let p = p.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            assert_eq!(best as u32, image.label, "{}", image.path);
            assert!(p[best] > 0.6, "{}: {}", image.path, p[best]);
        }
    }
}
