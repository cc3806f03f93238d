//! `blindspot demo-data` and `blindspot train-demo`: the synthetic shapes and the demo models
//! the app opens with. Both are deterministic from their seeds.

use std::path::PathBuf;

use anyhow::{Context, Result};
use blindspot::analysis::frequency::FrequencyTransform;
use blindspot::analysis::pgd::PgdConfig;
use blindspot::demo::generator::{self, CLASSES};
use blindspot::demo::train::{TrainConfig, held_out_accuracy, save_checkpoint, train_on_shapes};
use blindspot::models::{LoadOptions, load_classifier};
use clap::Args;
use indicatif::ProgressBar;

#[derive(Args)]
pub struct DemoDataArgs {
    /// Output folder: DIR/<class>/NNNNN.png plus labels.tsv (read by `accuracy` and `eval`).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 2000)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image side in pixels (16-128).
    #[arg(long, default_value_t = generator::DEFAULT_SIZE)]
    size: u32,
    /// Also write N clearly drawn examples per class as DIR/<class>_<n>.png (the app's gallery).
    #[arg(long)]
    gallery: Option<usize>,
}

pub fn demo_data(args: &DemoDataArgs) -> Result<()> {
    if let Some(per_class) = args.gallery {
        let files = generator::write_gallery(&args.out, args.seed, per_class, args.size)?;
        // labels.tsv makes the gallery a data set that `accuracy` and `eval` read directly.
        let mut tsv = String::from("file\tlabel\n");
        for (label, class) in CLASSES.iter().enumerate() {
            for f in &files {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.rsplit_once('_').is_some_and(|(c, _)| c == *class) {
                    tsv.push_str(&format!("{name}\t{label}\n"));
                }
            }
        }
        blindspot::record::write_atomic(&args.out.join("labels.tsv"), tsv.as_bytes())?;
        println!("gallery: {} images in {}", files.len(), args.out.display());
        return Ok(());
    }
    let bar = ProgressBar::new(args.count as u64);
    generator::write_dataset(&args.out, args.seed, args.count, args.size, |n| {
        bar.set_position(n as u64)
    })?;
    bar.finish_and_clear();
    println!(
        "{} images of {} classes in {} (fingerprint {})",
        args.count,
        CLASSES.len(),
        args.out.display(),
        generator::dataset_fingerprint(args.seed, 20.min(args.count), args.size)
    );
    Ok(())
}

#[derive(Args)]
pub struct TrainDemoArgs {
    /// Where to write the checkpoint (safetensors); the model card goes beside it as .md.
    #[arg(long)]
    out: PathBuf,
    /// Adversarial training with L2 PGD at --eps (pixel space, [0, 1] images), --pgd-steps steps.
    #[arg(long)]
    robust: bool,
    #[arg(long, default_value_t = 1.0)]
    eps: f32,
    #[arg(long, default_value_t = 5)]
    pgd_steps: usize,
    #[arg(long)]
    epochs: Option<usize>,
    /// Fresh generated images per epoch.
    #[arg(long)]
    images_per_epoch: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start from a trained checkpoint of the same layout (e.g. fine-tune the standard model
    /// adversarially).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Peak learning rate (cosine decay to 0).
    #[arg(long)]
    lr: Option<f64>,
    /// Train on transformed shapes (ALGORITHMS.md §4.3): flip, lowpass:B, highpass:B or
    /// cutlow:B. The model card and metadata record it; evaluate the model on T(x)
    /// (`margins --also MODEL@flip`).
    #[arg(long, value_name = "T")]
    input_transform: Option<FrequencyTransform>,
    /// Held-out images for the accuracy in the model card.
    #[arg(long, default_value_t = 2000)]
    eval_images: usize,
}

pub fn train_demo(args: &TrainDemoArgs) -> Result<()> {
    let mut cfg = if args.robust {
        TrainConfig::robust()
    } else {
        TrainConfig::standard()
    };
    if args.robust {
        cfg.pgd = Some(PgdConfig {
            epsilon: args.eps,
            steps: args.pgd_steps,
            ..PgdConfig::default()
        });
    }
    cfg.seed = args.seed;
    cfg.init = args.init.clone();
    if let Some(lr) = args.lr {
        cfg.learning_rate = lr;
    }
    if let Some(e) = args.epochs {
        cfg.epochs = e;
    }
    if let Some(n) = args.images_per_epoch {
        cfg.images_per_epoch = n;
    }
    if let Some(t) = args.input_transform {
        t.check(cfg.image_size as usize)
            .with_context(|| format!("--input-transform {t}"))?;
        cfg.input_transform = Some(t);
    }
    let device = candle_core::Device::Cpu;
    let mut log = Vec::new();
    let started = std::time::Instant::now();
    let trained = train_on_shapes(&cfg, &device, |s| {
        println!(
            "epoch {:>2}/{}: loss {:.4}, train accuracy {:.2}%, {:.0} s",
            s.epoch,
            cfg.epochs,
            s.loss,
            100.0 * s.train_accuracy,
            s.seconds
        );
        log.push(s.clone());
        true
    })?;
    let kind = match (args.robust, cfg.input_transform) {
        (true, _) => "robust".to_string(),
        (false, Some(FrequencyTransform::Flip)) => "flipped".to_string(),
        (false, Some(t)) => t.to_string(),
        (false, None) => "standard".to_string(),
    };
    let description = format!(
        "blindspot demo model ({kind}): CIFAR ResNet-{} trained by `blindspot train-demo` on synthetic shapes{}{}",
        6 * cfg.blocks_per_stage + 2,
        cfg.input_transform.map_or(String::new(), |t| format!(
            " seen through the {t} transform (ALGORITHMS.md §4.3)"
        )),
        cfg.pgd.as_ref().map_or(String::new(), |p| format!(
            ", L2 PGD adversarial training eps {} ({} steps)",
            p.epsilon, p.steps
        ))
    );
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    save_checkpoint(&trained, &cfg, &description, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let train_seconds = started.elapsed().as_secs_f64();

    // Measure the saved file through the ordinary loader, as every user of it will.
    let model = load_classifier(&args.out, &LoadOptions::default())?;
    let attack = PgdConfig {
        epsilon: args.eps,
        steps: 10,
        ..PgdConfig::default()
    };
    let (clean, robust) =
        held_out_accuracy(&model, args.eval_images, Some(&attack), cfg.input_transform)?;
    let robust = robust.unwrap_or(0.0);
    println!(
        "held-out ({} images): clean {:.2}%, under L2 PGD eps {} (10 steps) {:.2}%",
        args.eval_images,
        100.0 * clean,
        args.eps,
        100.0 * robust
    );
    let card = format!(
        "# {name}\n\n{description}.\n\n\
         - Architecture: `{arch}` ({params} parameters), input 32x32 RGB in [0, 1], normalised with mean {mean} / std {std} inside the model.\n\
         {transform_line}\
         - Classes: {classes}.\n\
         - Data: fresh images from `blindspot demo-data`'s generator every epoch (seed {seed}); {n} images x {epochs} epochs.\n\
         - Training: {init}AdamW, lr {lr} with cosine decay, weight decay {wd}, batch {bs}{pgd}; {secs:.0} s on this machine's CPU.\n\
         - Held-out accuracy ({eval} images of a seed never trained on): **{clean:.2}%** clean, **{robust:.2}%** under L2 PGD (eps {eps}, 10 steps).\n\
         - Regenerate bit-identically (same machine type and thread count): `cargo run --release -- {command}`.\n\n\
         ## Training log\n\n| epoch | loss | train accuracy | seconds |\n|---|---|---|---|\n{rows}",
        name = args
            .out
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        arch = model.spec().architecture,
        params = blindspot::demo::train::state_dict(&trained.varmap)?
            .iter()
            .filter(|(k, _)| !k.contains("running_"))
            .map(|(_, t)| t.elem_count())
            .sum::<usize>(),
        transform_line = cfg.input_transform.map_or(String::new(), |t| format!(
            "- Input transform: **{t}**. Every training and held-out image x went through T before the network (the per-channel normalisation above is applied to T(x), not §4.3's transformed mean image; the first BatchNorm absorbs the offset). Evaluate it on T(x): `blindspot margins ... --also weights/{name}.safetensors@{t}`, or `--input-transform {t}` when it is the first model.\n",
            name = args.out.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        )),
        mean = blindspot::demo::train::DEMO_MEAN,
        std = blindspot::demo::train::DEMO_STD,
        classes = CLASSES.join(", "),
        seed = cfg.seed,
        n = cfg.images_per_epoch,
        epochs = cfg.epochs,
        init = cfg.init.as_ref().map_or(String::new(), |p| format!(
            "fine-tuned from `{}`, ",
            p.display()
        )),
        lr = cfg.learning_rate,
        wd = cfg.weight_decay,
        bs = cfg.batch_size,
        pgd = cfg.pgd.as_ref().map_or(String::new(), |p| format!(
            ", on L2 PGD examples (eps {}, {} steps of {}·eps/steps)",
            p.epsilon, p.steps, p.step_scale
        )),
        secs = train_seconds,
        eval = args.eval_images,
        clean = 100.0 * clean,
        robust = 100.0 * robust,
        eps = args.eps,
        command = std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        rows = log
            .iter()
            .map(|s| format!(
                "| {} | {:.4} | {:.2}% | {:.0} |\n",
                s.epoch,
                s.loss,
                100.0 * s.train_accuracy,
                s.seconds
            ))
            .collect::<String>(),
    );
    let card_path = args.out.with_extension("md");
    blindspot::record::write_atomic(&card_path, card.as_bytes())?;
    println!("wrote {} and {}", args.out.display(), card_path.display());
    Ok(())
}
