//! `blindspot margins`: decision-boundary margins in DCT frequency subspaces (ALGORITHMS.md
//! §4) for Ns seeded samples of an image set, one model or several overlaid on the same
//! samples. Writes config.json, the exact tensors, the margin tables and the figures.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use blindspot::analysis::frequency::{
    DeepFoolConfig, DeepFoolStatus, FrequencyError, FrequencyTransform, MarginOptions,
    MarginProgress, SubspacePlan, SubspaceTask, TransformedModel, measure_margins_resuming,
    select_samples, table_markdown,
};
use blindspot::figures::margin_plot;
use blindspot::frequency_record::{
    MarginRecord, RecordModel, RecordSamples, SweepPlan, model_dir, model_label as label,
    plot_data, series, sweep_item_name, write_model_outputs,
};
use blindspot::images::LabeledSet;
use blindspot::models::Classifier;
use blindspot::run::RunError;
use blindspot::run_folder::{ModelFingerprint, Opening, RunFolder, item_file};
use candle_core::{DType, Tensor};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::ModelArgs;

#[derive(Args)]
pub struct MarginsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The samples: an ImageFolder tree (DIR/<class>/*.png), a folder with labels.tsv, or a
    /// .safetensors file with `images` U8 [N,H,W,C] at the model's input size and `labels`.
    #[arg(long)]
    images: PathBuf,
    /// Ns: images drawn without replacement (the first Ns of a seeded permutation).
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Seed of the sample draw and the plot jitter.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// DeepFool overshoot os (enters the label check and the margin only).
    #[arg(long, default_value_t = 0.02)]
    overshoot: f64,
    /// DeepFool iterations before a sample counts as MaxIter.
    #[arg(long, default_value_t = 100)]
    max_iter: usize,
    /// The model was trained on transformed images: flip, lowpass:B, highpass:B or cutlow:B.
    /// Its margins are measured on T(x), in the bands of its own input, as the seed does.
    #[arg(long, value_name = "T")]
    input_transform: Option<FrequencyTransform>,
    /// Another model to overlay on the same samples (repeatable): a checkpoint path or
    /// demo:standard / demo:robust, optionally with `@T` when it was trained on transformed
    /// images (e.g. `weights/demo-flipped.safetensors@flip`).
    #[arg(long = "also", value_name = "MODEL")]
    also: Vec<String>,
    /// Band K (K×K DCT blocks); default from the input size (§4.1).
    #[arg(long)]
    band: Option<usize>,
    /// Step between block starts; default from the input size (§4.1).
    #[arg(long)]
    step: Option<usize>,
    /// Samples per DeepFool batch (each takes Kc rows of a gradient batch).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Log-scale y axis in the margin plot.
    #[arg(long)]
    log_scale: bool,
    /// Output folder (with plan.json and one items/model_K_subspace_SSS.json per finished
    /// subspace while it runs).
    #[arg(long)]
    out: PathBuf,
    /// Continue a stopped or killed sweep in --out: only unfinished subspaces are computed.
    /// Refused if the models' weights, samples or settings differ from the folder's plan.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    shard: super::ShardArgs,
    /// Print the first model's margin table as one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

/// One model of the comparison, with its input transform.
struct Entry {
    label: String,
    source: String,
    classifier: Classifier,
    transform: Option<FrequencyTransform>,
}

fn split_transform(name: &str) -> Result<(&str, Option<FrequencyTransform>)> {
    match name.rsplit_once('@') {
        Some((model, t)) => {
            let t = t
                .parse::<FrequencyTransform>()
                .with_context(|| format!("in --also {name}"))?;
            Ok((model, Some(t)))
        }
        None => Ok((name, None)),
    }
}

fn load_models(args: &MarginsArgs) -> Result<Vec<Entry>> {
    let main = args.model.load()?;
    let mut entries = vec![Entry {
        label: label(&main, args.input_transform),
        source: args.model.weights.as_ref().map_or_else(
            || format!("demo:{:?}", args.model.demo).to_lowercase(),
            |w| w.display().to_string(),
        ),
        classifier: main,
        transform: args.input_transform,
    }];
    for name in &args.also {
        let (model, transform) = split_transform(name)?;
        let classifier = super::load_named_model(model, &args.model)?;
        entries.push(Entry {
            label: label(&classifier, transform),
            source: name.clone(),
            classifier,
            transform,
        });
    }
    Ok(entries)
}

/// The §4.1 plan of the first model; every other model must take the same input.
fn plan_for(entries: &[Entry], args: &MarginsArgs) -> Result<SubspacePlan> {
    let spec = entries[0].classifier.spec();
    let [h, w] = spec.input_size;
    let plan = SubspacePlan::new(spec.channels, h, w, args.band, args.step)
        .with_context(|| format!("model {}", entries[0].source))?;
    for e in entries {
        let s = e.classifier.spec();
        if (s.channels, s.input_size) != (spec.channels, spec.input_size) {
            bail!(
                "model {} takes {}×{}×{} images but {} takes {}×{}×{}: overlaid models must share the input",
                e.source,
                s.channels,
                s.input_size[0],
                s.input_size[1],
                entries[0].source,
                spec.channels,
                h,
                w
            );
        }
        let classes = s.num_classes();
        if classes < 2 {
            return Err(FrequencyError::TooFewClasses { classes })
                .with_context(|| format!("model {}", e.source));
        }
    }
    Ok(plan)
}

pub fn run(args: &MarginsArgs) -> Result<()> {
    let entries = load_models(args)?;
    let plan = plan_for(&entries, args)?;
    let config = DeepFoolConfig {
        overshoot: args.overshoot,
        max_iter: args.max_iter,
        ..DeepFoolConfig::default()
    };
    config.validate()?;
    let set = LabeledSet::open(&args.images)
        .with_context(|| format!("opening the image set {}", args.images.display()))?;
    if set.is_empty() || args.samples == 0 {
        bail!(
            "no samples: {} holds {} images and --samples is {}",
            args.images.display(),
            set.len(),
            args.samples
        );
    }
    let chosen = select_samples(args.seed, set.len(), args.samples);
    let spec = entries[0].classifier.spec();
    let device = entries[0].classifier.device().clone();
    let images = chosen
        .iter()
        .map(|&i| set.get(i, &spec.preprocess, spec.channels, &device))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("loading samples of {}", args.images.display()))?;
    let images = Tensor::stack(&images, 0)?.to_dtype(DType::F32)?;
    let sweep = SweepPlan {
        kind: "margins".into(),
        models: entries
            .iter()
            .map(|e| (ModelFingerprint::of(&e.classifier), e.transform))
            .collect(),
        plan,
        seed: args.seed,
        images: args.images.display().to_string(),
        samples: chosen
            .iter()
            .map(|&i| (i, set.path_of(i).display().to_string(), set.label(i)))
            .collect(),
        deepfool: config,
        batch: args.batch,
    };
    // One unit per (model, subspace): shards split them.
    let units = (0..entries.len())
        .flat_map(|k| (0..plan.count).map(move |s| vec![item_file(&sweep_item_name(k, s))]))
        .collect();
    let run = args.shard.batch_run(args.resume)?;
    let folder = RunFolder::open(
        &args.out,
        &sweep,
        Opening {
            what: "margin sweep",
            resume: run.resume,
            may_differ: &["batch"],
            shard: run.shard,
            units,
            command: run.command,
        },
    )?;
    super::stop_after_step_on_ctrl_c();

    let options = MarginOptions {
        deepfool: config,
        batch: args.batch,
        keep_perturbations: false,
    };
    let mut results = Vec::with_capacity(entries.len());
    for (k, entry) in entries.iter().enumerate() {
        let model = TransformedModel::new(&entry.classifier, entry.transform)
            .with_context(|| format!("model {}", entry.source))?;
        let bar = if args.json {
            ProgressBar::hidden()
        } else {
            ProgressBar::new((plan.count * chosen.len()) as u64)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} sample-subspaces  {msg}  elapsed {elapsed}  eta {eta}",
            )
            .context("progress template")?,
        );
        bar.set_message(entry.label.clone());
        let started = Instant::now();
        let mut saved = Ok(());
        let distribution = measure_margins_resuming(
            &model,
            &images,
            &plan,
            &options,
            |s| {
                if !folder.owns(k * plan.count + s) {
                    return SubspaceTask::Skip;
                }
                match folder.item(&sweep_item_name(k, s)) {
                    Some(done) => SubspaceTask::Known(done),
                    None => SubspaceTask::Compute,
                }
            },
            |p| {
                match p {
                    MarginProgress::Batch { s, done } => {
                        bar.set_position((s * chosen.len() + done) as u64);
                    }
                    MarginProgress::Subspace(finished) => {
                        saved = folder.save_item(&sweep_item_name(k, finished.summary.s), finished);
                        if saved.is_err() {
                            return ControlFlow::Break(());
                        }
                    }
                }
                // Ctrl-C: stop after this batch; finished subspaces are on disk.
                blindspot::interrupt::stop_requested()
            },
        )
        .with_context(|| format!("measuring margins of {}", entry.source))?;
        saved?;
        if folder.shard().is_some() {
            bar.finish_and_clear();
            continue;
        }
        if !distribution.complete() {
            // Every model before this one is complete (or the loop would have stopped).
            let done = k * plan.count + distribution.subspaces.len();
            return Err(RunError::Interrupted {
                done,
                total: plan.count * entries.len(),
                unit: "subspaces",
                out: args.out.clone(),
            }
            .into());
        }
        let seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let dir = model_dir(&args.out, k);
        write_model_outputs(&dir, &distribution).map_err(anyhow::Error::from_boxed)?;
        eprintln!("{}: {seconds:.1} s", entry.label);
        println!(
            "{}\n{}",
            entry.label,
            table_markdown(&distribution.summaries())
        );
        results.push((distribution, seconds));
    }
    // A shard writes no tables: `merge` does, once every shard is done.
    if let Some(message) = folder.finish_shard()? {
        println!("{message}");
        return Ok(());
    }

    let record = MarginRecord {
        plan,
        seed: args.seed,
        samples: RecordSamples {
            images: args.images.display().to_string(),
            indices: chosen.clone(),
            files: chosen
                .iter()
                .map(|&i| set.path_of(i).display().to_string())
                .collect(),
            labels: chosen.iter().map(|&i| Some(set.label(i))).collect(),
        },
        deepfool: config,
        batch: args.batch,
        models: entries
            .iter()
            .zip(&results)
            .map(|(e, (d, seconds))| RecordModel {
                label: e.label.clone(),
                source: e.source.clone(),
                transform: e.transform,
                distribution: d,
                seconds: *seconds,
            })
            .collect(),
    };
    record
        .write_summary(&args.out, &images.get(0)?, args.log_scale)
        .map_err(anyhow::Error::from_boxed)?;
    println!("written to {}", args.out.display());
    if args.json {
        let first = &results[0].0;
        println!(
            "{}",
            json!({"subspaces": first.summaries(), "samples": first.samples, "dim": plan.dim(), "seconds": results[0].1})
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct MarginsPlotArgs {
    /// A `blindspot margins` output folder.
    #[arg(long)]
    run: PathBuf,
    /// Log-scale y axis.
    #[arg(long)]
    log_scale: bool,
    /// Figure title (default: the band size and sample count).
    #[arg(long)]
    title: Option<String>,
    /// Where to write the PNG (an .svg is written beside it); default RUN/margin_plot.png.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Redraws the margin distribution plot of a finished run from its tensors.
pub fn run_plot(args: &MarginsPlotArgs) -> Result<()> {
    let config_path = args.run.join("config.json");
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .with_context(|| format!("parsing {}", config_path.display()))?;
    let plan: SubspacePlan = serde_json::from_value(config["plan"].clone())
        .with_context(|| format!("{} has no subspace plan", config_path.display()))?;
    let seed = config["seed"].as_u64().unwrap_or(0);
    let models = config["models"]
        .as_array()
        .with_context(|| format!("{} lists no models", config_path.display()))?;
    let mut all = Vec::with_capacity(models.len());
    let mut samples = 0;
    for m in models {
        let folder = args.run.join(m["folder"].as_str().unwrap_or("."));
        let file = folder.join("margins.safetensors");
        let tensors = candle_core::safetensors::load(&file, &candle_core::Device::Cpu)
            .with_context(|| format!("reading {}", file.display()))?;
        let get = |name: &str| {
            tensors
                .get(name)
                .with_context(|| format!("{} has no `{name}` tensor", file.display()))
        };
        let margins = get("margins")?.to_vec2::<f32>()?;
        let statuses = get("status")?
            .to_vec2::<u8>()?
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|code| {
                        DeepFoolStatus::from_code(code)
                            .with_context(|| format!("status code {code} in {}", file.display()))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        samples = margins.first().map_or(0, Vec::len);
        let label = m["label"].as_str().unwrap_or("model");
        all.push(series(label, margins, statuses));
    }
    let data = plot_data(
        &plan,
        seed,
        samples,
        all,
        args.log_scale,
        args.title.as_deref(),
    );
    let png = args
        .out
        .clone()
        .unwrap_or_else(|| args.run.join("margin_plot.png"));
    let figure = margin_plot(&data);
    figure.write_png(&png, 2.0)?;
    figure.write_svg(&png.with_extension("svg"))?;
    println!("written {}", png.display());
    Ok(())
}
