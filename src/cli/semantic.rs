//! `blindspot semantic map | regions | eval`: semantic robustness (ALGORITHMS.md §3) of one
//! model: the map of f = p(T(x, u))[c] over one or two parameters, regions grown around an
//! initial point (Naive, OIR_B, OIR_W), and SRVR over a labelled image set.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use blindspot::analysis::semantic::{
    OirWGradient, ParamSpace, RegionConfig, RegionMethod, SemanticObjective, SrvrConfig,
    compute_map, default_points, grow_region, parse_domain, parse_params, parse_point,
};
use blindspot::images::LabeledSet;
use blindspot::models::Classifier;
use blindspot::run::InputImage;
use blindspot::semantic::{
    ClassChoice, EvalEvent, EvalOptions, MapRecord, RegionRecord, RegionsRecord, SEMANTIC_VERSION,
    cost_markdown, run_eval, srvr_markdown,
};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::ModelArgs;

#[derive(Args)]
pub struct SemanticArgs {
    #[command(subcommand)]
    command: SemanticCommand,
}

#[derive(Subcommand)]
enum SemanticCommand {
    /// Network Semantic Map: f on a grid over one parameter (181 points) or two (61×61).
    Map(MapArgs),
    /// Grow regions (Naive, OIR_B, OIR_W) around an initial point; boxes, traces, volumes.
    Regions(RegionsArgs),
    /// SRVR over a labelled image set: the mean region volume per method, per class.
    Eval(EvalArgs),
}

/// Which parameters and domains.
#[derive(Args, Clone, Debug)]
struct SpaceArgs {
    /// Semantic parameters, comma-separated (one or two for maps): rot, scale, tx, ty,
    /// bright, contrast, hue (3-channel models), blur.
    #[arg(long, default_value = "rot,scale")]
    params: String,
    /// Domain override NAME=LO:HI in natural units, e.g. rot=-90:90 (repeatable).
    #[arg(long = "domain", value_name = "NAME=LO:HI")]
    domains: Vec<String>,
    /// Transformed images per model call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

impl SpaceArgs {
    fn space(&self, model: &Classifier) -> Result<ParamSpace> {
        let params = parse_params(&self.params)?;
        let overrides = self
            .domains
            .iter()
            .map(|d| parse_domain(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParamSpace::new(&params, &overrides, model.spec().channels)?)
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum GradientChoice {
    /// g = +∇f (the Taylor surrogate of OIR_B).
    Exact,
    /// The reference implementation's g = ∇[logsumexp(p) − p_c] (≈ −∇f).
    Reference,
}

/// The hyperparameters of §3.5, in z-units (every axis is 100 long).
#[derive(Args, Clone, Debug)]
struct RegionArgs {
    /// T, updates per region.
    #[arg(long, default_value_t = 600)]
    iterations: usize,
    /// η, the step size.
    #[arg(long, default_value_t = 0.1)]
    eta: f64,
    /// α, the outer margin of OIR_B.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// β, the OIR_W margin: 0 <= β < 2/(2n - 1).
    #[arg(long, default_value_t = 0.0009)]
    beta: f64,
    /// λ, Naive's side-length penalty.
    #[arg(long, default_value_t = 0.1)]
    lambda: f64,
    /// Initial half-width.
    #[arg(long, default_value_t = 1e-5)]
    h0: f64,
    /// Smallest side FIX allows.
    #[arg(long, default_value_t = 1e-5)]
    w_min: f64,
    /// Log (1+α)ⁿ·Σf_outer/Σf_inner − 1 per update (costs the outer corners).
    #[arg(long)]
    log_loss: bool,
    /// Which gradient OIR_W uses.
    #[arg(long, value_enum, default_value = "exact")]
    oir_w_gradient: GradientChoice,
    /// Initial point in natural units, e.g. rot=30,scale=1.2 (repeatable; unnamed parameters
    /// at identity). Default: the identity.
    #[arg(long = "start", value_name = "NAME=VALUE,...")]
    starts: Vec<String>,
}

impl RegionArgs {
    fn config(&self) -> RegionConfig {
        RegionConfig {
            eta: self.eta,
            alpha: self.alpha,
            beta: self.beta,
            lambda: self.lambda,
            iterations: self.iterations,
            h0: self.h0,
            w_min: self.w_min,
            log_loss: self.log_loss,
            oir_w_gradient: match self.oir_w_gradient {
                GradientChoice::Exact => OirWGradient::Exact,
                GradientChoice::Reference => OirWGradient::Reference,
            },
        }
    }

    /// The initial points in z-units.
    fn starts(&self, space: &ParamSpace) -> Result<Vec<Vec<f64>>> {
        if self.starts.is_empty() {
            return Ok(vec![space.identity_z()]);
        }
        self.starts
            .iter()
            .map(|s| Ok(space.to_z(&parse_point(s, space)?)))
            .collect()
    }

    /// Refuses bad settings for `methods` before any work, and prints the n ≥ 3 warning.
    fn checked(&self, space: &ParamSpace, methods: &[RegionMethod]) -> Result<RegionConfig> {
        let config = self.config();
        for &m in methods {
            config.validate(m, space.dim())?;
        }
        for w in RegionConfig::warnings(space.dim()) {
            eprintln!("warning: {w}");
        }
        Ok(config)
    }
}

/// One image and the class f is about.
#[derive(Args, Clone, Debug)]
struct ImageArgs {
    /// The image (PNG, JPEG, WebP, or gallery:NAME).
    #[arg(long)]
    image: PathBuf,
    /// Class index; by default the model's prediction on the image.
    #[arg(long)]
    class: Option<u32>,
}

impl ImageArgs {
    fn load(&self, model: &Classifier) -> Result<(InputImage, ClassChoice)> {
        let image = InputImage::load(&self.image, model)
            .with_context(|| format!("loading the image {}", self.image.display()))?;
        let choice = ClassChoice::new(model, &image.pixels, self.class)?;
        eprintln!(
            "class `{}` ({}): p = {:.4} at the identity; the model predicts `{}` (p = {:.4})",
            choice.class_name,
            choice.class,
            choice.identity_confidence,
            choice.predicted_name,
            choice.predicted_confidence
        );
        if let Some(w) = choice.warning() {
            eprintln!("warning: {w}");
        }
        Ok((image, choice))
    }
}

#[derive(Args)]
pub struct MapArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    space: SpaceArgs,
    /// Points per axis (default 181 for one parameter, 61 for two).
    #[arg(long)]
    points: Option<usize>,
    /// Output folder: semantic.json, tensors.safetensors, map.png/svg.
    #[arg(long)]
    out: PathBuf,
    /// Print {"params", "grid", "values"} as one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RegionsArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    space: SpaceArgs,
    #[command(flatten)]
    region: RegionArgs,
    /// Which method grows the regions.
    #[arg(long, value_enum, default_value = "all")]
    method: MethodChoice,
    /// Points per axis of the map the boxes are drawn on (default 181 / 61).
    #[arg(long)]
    points: Option<usize>,
    /// Skip the map (for n <= 2 it is computed to draw the boxes on).
    #[arg(long)]
    no_map: bool,
    /// Output folder: semantic.json, tensors, traces.png/svg, map.png/svg, corners/.
    #[arg(long)]
    out: PathBuf,
    /// Print {"method", "boxes", "volume_ratio"} as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MethodChoice {
    Naive,
    OirB,
    OirW,
    All,
}

impl MethodChoice {
    fn methods(self) -> Vec<RegionMethod> {
        match self {
            Self::Naive => vec![RegionMethod::Naive],
            Self::OirB => vec![RegionMethod::OirB],
            Self::OirW => vec![RegionMethod::OirW],
            Self::All => RegionMethod::ALL.to_vec(),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Naive => "naive",
            Self::OirB => "oir_b",
            Self::OirW => "oir_w",
        }
    }
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    space: SpaceArgs,
    #[command(flatten)]
    region: RegionArgs,
    /// The images: an ImageFolder tree, a folder with labels.tsv, or a .safetensors set.
    #[arg(long)]
    images: PathBuf,
    /// Only the first N images of each class.
    #[arg(long, value_name = "N")]
    per_class: Option<usize>,
    /// Also compute a map per image (mean f and the fractions f >= 0.1, f >= 0.5).
    #[arg(long)]
    maps: bool,
    /// Points per axis of those maps (default 181 / 61).
    #[arg(long)]
    points: Option<usize>,
    /// Output folder: semantic.json, srvr.md, srvr.csv, cost.md, tensors, mean_map.png/svg,
    /// plan.json and one items/image_NNNNNN.json per finished image.
    #[arg(long)]
    out: PathBuf,
    /// Continue a stopped or killed evaluation in --out: only unfinished images are computed.
    /// Refused if the model weights, images or settings differ from the folder's plan.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    shard: super::ShardArgs,
    /// Print {"srvr", "images", "per_class"} as one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &SemanticArgs) -> Result<()> {
    match &args.command {
        SemanticCommand::Map(a) => run_map(a),
        SemanticCommand::Regions(a) => run_regions(a),
        SemanticCommand::Eval(a) => run_eval_command(a),
    }
}

fn bar(len: usize, template: &str) -> Result<ProgressBar> {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(ProgressStyle::with_template(template).context("progress template")?);
    Ok(bar)
}

fn run_map(args: &MapArgs) -> Result<()> {
    let started = Instant::now();
    let model = args.model.load()?;
    let space = args.space.space(&model)?;
    let points = args.points.unwrap_or(default_points(space.dim()));
    // Grid errors (n > 2, too few points) before the image is read.
    blindspot::analysis::semantic::map_grid(&space, points)?;
    let (image, choice) = args.image.load(&model)?;
    let objective = SemanticObjective::new(
        &model,
        &image.pixels,
        choice.class,
        space.clone(),
        args.space.batch,
    )?;
    let total = points.pow(space.dim() as u32);
    let progress = bar(total, "{bar:30} {pos}/{len} points  {per_sec}  eta {eta}")?;
    let map = compute_map(&objective, points, |p| {
        progress.set_position(p.done as u64);
        ControlFlow::Continue(())
    })?;
    progress.finish_and_clear();
    let record = MapRecord {
        version: SEMANTIC_VERSION,
        kind: "map".into(),
        model: model.spec().clone(),
        image: image.name.clone(),
        class: choice,
        space: space.clone(),
        batch: args.space.batch,
        map,
        seconds: started.elapsed().as_secs_f64(),
    };
    record.save(&args.out)?;
    let stats = record.map.stats();
    if let Some(s) = stats {
        println!(
            "{} points in {:.1} s: mean f {:.3}, f >= 0.1 on {:.1} %, f >= 0.5 on {:.1} %",
            record.map.values.len(),
            record.seconds,
            s.mean,
            100.0 * s.fraction_at_least_0_1,
            100.0 * s.fraction_at_least_0_5
        );
    }
    println!("written to {}", args.out.display());
    if args.json {
        let names: Vec<&str> = space.params().iter().map(|p| p.name()).collect();
        println!(
            "{}",
            json!({"params": names, "grid": record.map.grid, "values": record.map.values})
        );
    }
    Ok(())
}

fn run_regions(args: &RegionsArgs) -> Result<()> {
    let started = Instant::now();
    let model = args.model.load()?;
    let space = args.space.space(&model)?;
    let methods = args.method.methods();
    let config = args.region.checked(&space, &methods)?;
    let starts = args.region.starts(&space)?;
    let (image, choice) = args.image.load(&model)?;
    let mut objective = SemanticObjective::new(
        &model,
        &image.pixels,
        choice.class,
        space.clone(),
        args.space.batch,
    )?
    .with_gradient(config.oir_w_gradient);
    let mut regions = Vec::new();
    for &method in &methods {
        for start in &starts {
            let progress = bar(
                config.iterations,
                &format!(
                    "{:<6} {{bar:30}} {{pos}}/{{len}}  {{msg}}  {{per_sec}}",
                    method.label()
                ),
            )?;
            let region = grow_region(&mut objective, method, &config, start, |s| {
                progress.set_position(s.iteration as u64);
                progress.set_message(format!(
                    "volume {:.2} %",
                    100.0 * blindspot::analysis::semantic::volume_ratio(s.a, s.b)
                ));
                ControlFlow::Continue(())
            })?;
            progress.finish_and_clear();
            regions.push(region);
        }
    }
    let map = if space.dim() <= 2 && !args.no_map {
        let points = args.points.unwrap_or(default_points(space.dim()));
        let progress = bar(
            points.pow(space.dim() as u32),
            "map {bar:30} {pos}/{len} points",
        )?;
        let map = compute_map(&objective, points, |p| {
            progress.set_position(p.done as u64);
            ControlFlow::Continue(())
        })?;
        progress.finish_and_clear();
        Some(map)
    } else {
        None
    };
    let records: Vec<RegionRecord> = regions
        .iter()
        .enumerate()
        .map(|(k, r)| RegionRecord::new(&space, r, k))
        .collect();
    let record = RegionsRecord {
        version: SEMANTIC_VERSION,
        kind: "regions".into(),
        model: model.spec().clone(),
        image: image.name.clone(),
        class: choice,
        space: space.clone(),
        config: config.clone(),
        regions: records,
        map,
        warnings: RegionConfig::warnings(space.dim()),
        seconds: started.elapsed().as_secs_f64(),
    };
    record.save(&args.out, &regions, &objective)?;
    let names: Vec<&str> = space.params().iter().map(|p| p.name()).collect();
    for r in &record.regions {
        let sides: Vec<String> = names
            .iter()
            .zip(r.a_u.iter().zip(&r.b_u))
            .map(|(n, (a, b))| format!("{n} [{a:.4}, {b:.4}]"))
            .collect();
        println!(
            "{:<6} {}  volume {:.2} % of the domain",
            r.method.label(),
            sides.join("  "),
            100.0 * r.volume_ratio
        );
    }
    println!("written to {}", args.out.display());
    if args.json {
        let boxes = |rs: &[&RegionRecord], z: bool| -> Vec<Vec<f64>> {
            rs.iter()
                .map(|r| {
                    let (a, b) = if z {
                        (&r.a_z, &r.b_z)
                    } else {
                        (&r.a_u, &r.b_u)
                    };
                    a.iter().chain(b).copied().collect()
                })
                .collect()
        };
        let all: Vec<&RegionRecord> = record.regions.iter().collect();
        let mean = |rs: &[&RegionRecord]| {
            rs.iter().map(|r| r.volume_ratio).sum::<f64>() / rs.len().max(1) as f64
        };
        let per_method: serde_json::Map<String, serde_json::Value> = methods
            .iter()
            .map(|m| {
                let rs: Vec<&RegionRecord> = all.iter().copied().filter(|r| r.method == *m).collect();
                (
                    m.key().to_string(),
                    json!({"boxes": boxes(&rs, false), "boxes_z": boxes(&rs, true), "volume_ratio": mean(&rs)}),
                )
            })
            .collect();
        println!(
            "{}",
            json!({
                "method": args.method.key(),
                "params": names,
                "boxes": boxes(&all, false),
                "boxes_z": boxes(&all, true),
                "volume_ratio": mean(&all),
                "methods": per_method,
            })
        );
    }
    Ok(())
}

fn run_eval_command(args: &EvalArgs) -> Result<()> {
    let model = args.model.load()?;
    let space = args.space.space(&model)?;
    let config = args.region.checked(&space, &RegionMethod::ALL)?;
    let starts = if args.region.starts.is_empty() {
        Vec::new()
    } else {
        args.region.starts(&space)?
    };
    let map_points = if args.maps {
        let points = args.points.unwrap_or(default_points(space.dim()));
        blindspot::analysis::semantic::map_grid(&space, points)?;
        Some(points)
    } else {
        None
    };
    let set = LabeledSet::open(&args.images)
        .with_context(|| format!("opening the image set {}", args.images.display()))?;
    let options = EvalOptions {
        config: SrvrConfig {
            region: config,
            starts,
            map_points,
        },
        batch: args.space.batch,
        per_class: args.per_class,
    };
    let progress = bar(
        0,
        "{bar:30} {pos}/{len} images  {msg}  elapsed {elapsed}  eta {eta}",
    )?;
    super::stop_after_step_on_ctrl_c();
    let outcome = run_eval(
        &model,
        &set,
        &args.images.display().to_string(),
        &space,
        &options,
        &args.out,
        &args.shard.batch_run(args.resume)?,
        |event| {
            match event {
                EvalEvent::Started { total } => progress.set_length(*total as u64),
                EvalEvent::Image { done, .. } => progress.set_position(*done as u64),
                EvalEvent::Step {
                    method,
                    iteration,
                    iterations,
                } => progress.set_message(format!("{} {iteration}/{iterations}", method.label())),
            }
            // Ctrl-C: stop after this step; finished images are on disk.
            blindspot::interrupt::stop_requested()
        },
    )?;
    progress.finish_and_clear();
    if let Some(message) = &outcome.shard_done {
        println!("{message}");
        return Ok(());
    }
    if outcome.record.stopped {
        return Err(blindspot::run::RunError::Interrupted {
            done: outcome.record.images.len() + outcome.record.skipped.len(),
            total: outcome.total,
            unit: "images",
            out: args.out.clone(),
        }
        .into());
    }
    let (record, maps) = (outcome.record, outcome.maps);
    record.save(&args.out, &maps)?;
    let name = record.model.short_name();
    print!("{}", srvr_markdown(&[(name.as_str(), &record)]));
    println!();
    print!(
        "{}",
        cost_markdown(
            space.dim(),
            options.config.region.iterations,
            map_points.unwrap_or(default_points(space.dim())),
            options.config.region.log_loss
        )
    );
    for s in &record.skipped {
        eprintln!("skipped {}: {}", s.source, s.reason);
    }
    println!(
        "{} images evaluated, {} skipped, in {:.1} s; written to {}",
        record.images.len(),
        record.skipped.len(),
        record.seconds,
        args.out.display()
    );
    if args.json {
        let summary = record.summary.as_ref();
        let per_class: Vec<serde_json::Value> = summary
            .map(|s| {
                s.per_class
                    .iter()
                    .map(|c| json!({"class": c.class, "name": c.name, "images": c.images, "srvr": c.srvr, "map": c.map}))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{}",
            json!({
                "srvr": summary.map(|s| json!(s.srvr)),
                "images": record.images.len(),
                "skipped": record.skipped.len(),
                "per_class": per_class,
                "map": summary.and_then(|s| s.map),
            })
        );
    }
    Ok(())
}
