//! What a finished reach evaluation writes beside its pairs (§2.4): `reach.json`, `pairs.csv`,
//! `summary.md` (reach table, hit-rate matrix, width summary), the hit-rate matrix heatmap and
//! the 10×10 examples grid as PNG and SVG.

use std::fmt::Write as _;
use std::path::Path;

use candle_core::{Device, Tensor};
use image::RgbImage;

use super::store::load_x_final;
use super::{ReachPairRecord, ReachPlanRecord, ReachSummary};
use crate::figures::{self, GridCell, GridFigureData, MatrixFigureData};
use crate::images;
use crate::record::write_atomic;
use crate::run::Result;

pub const SUMMARY_JSON: &str = "reach.json";

fn na(v: Option<f64>, decimals: usize) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.decimals$}"))
}

/// [C, H, W] pixels as an RGB image, clamped to [0, 1] for display (§2.2: x_final is kept
/// unclamped).
fn display_rgb(pixels: &[f32], shape: [usize; 3]) -> Result<RgbImage> {
    let clamped: Vec<f32> = pixels.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    let t = Tensor::from_vec(clamped, shape.as_slice(), &Device::Cpu)?;
    Ok(images::from_tensor(&t)?)
}

/// The header and separator of the reach table (§2.4), with the criterion's own column names.
fn table_header(summary: &ReachSummary) -> String {
    use crate::analysis::reach::HitCriterion;
    match summary.criterion {
        HitCriterion::Lpips => "| model | valid pairs | median LPIPS | mean LPIPS | reach @0.03 (off-diagonal) | reach @0.02 (off-diagonal) | fraction < 0.02 (all valid) |\n|---|---|---|---|---|---|---|\n".into(),
        HitCriterion::RelativeL2 => "| model | valid pairs | median LPIPS | mean LPIPS | reach (relative L2 ≤ 0.05, off-diagonal) | — | — |\n|---|---|---|---|---|---|---|\n".into(),
    }
}

fn table_row(summary: &ReachSummary) -> String {
    let t = &summary.table;
    format!(
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        summary.model.label(),
        t.valid_pairs,
        na(t.median_lpips, 4),
        na(t.mean_lpips, 4),
        na(t.reach_003, 3),
        na(t.reach_002, 3),
        na(t.frac_lt_002_all, 3)
    )
}

/// The reach table of several evaluations, one row per model. Evaluations under different
/// hit criteria get a table each: their numbers are not comparable.
pub fn reach_table_markdown(summaries: &[ReachSummary]) -> String {
    let mut md = String::new();
    let mut criteria: Vec<_> = summaries.iter().map(|s| s.criterion).collect();
    criteria.dedup();
    for criterion in criteria {
        let rows: Vec<&ReachSummary> = summaries
            .iter()
            .filter(|s| s.criterion == criterion)
            .collect();
        let _ = writeln!(md, "Hit: {}\n", criterion.label());
        md.push_str(&table_header(rows[0]));
        for s in rows {
            md.push_str(&table_row(s));
            if !s.complete() {
                let _ = writeln!(
                    md,
                    "|  ({} of {} pairs done) | | | | | | |",
                    s.pairs_done, s.pairs_total
                );
            }
        }
        md.push('\n');
    }
    md
}

/// The whole summary of one evaluation as Markdown.
pub fn summary_markdown(plan: &ReachPlanRecord, s: &ReachSummary) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# NSPGD reach: {} on {}\n", s.model.label(), s.dataset);
    let _ = writeln!(
        md,
        "{} sources × {} targets = {} pairs ({} done); hit: {}.\n",
        plan.sources.len(),
        plan.targets.len(),
        s.pairs_total,
        s.pairs_done,
        s.criterion.label()
    );
    if !plan.classes_without_target.is_empty() {
        let _ = writeln!(
            md,
            "Classes without a target (no image classified correctly with confidence > 0.6): {:?}\n",
            plan.classes_without_target
        );
    }
    let _ = writeln!(md, "## Reach table\n");
    md.push_str(&table_header(s));
    md.push_str(&table_row(s));
    let _ = writeln!(
        md,
        "\n## Hit-rate matrix (row = source class, column = target class)\n"
    );
    let _ = writeln!(md, "| source \\ target | {} |", s.class_names.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(s.class_names.len()));
    for (name, row) in s.class_names.iter().zip(&s.hit_matrix) {
        let cells: Vec<String> = row.iter().map(|v| na(*v, 2)).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    }
    if let Some(w) = &s.width_summary {
        let _ = writeln!(
            md,
            "\n## Width summary ({} measurements; mean over measurements)\n",
            w.measurements
        );
        let _ = writeln!(md, "| radius | mean q05 | mean q95 |\n|---|---|---|");
        let radii = std::iter::once("0 (on path)".to_string())
            .chain(w.radii.iter().map(|r| figures::style::num(f64::from(*r))));
        for (r, row) in radii.zip(&w.rows) {
            let (q05, q95) = row.map_or(("n/a".into(), "n/a".into()), |[a, b]| {
                (format!("{a:.3}"), format!("{b:.3}"))
            });
            let _ = writeln!(md, "| {r} | {q05} | {q95} |");
        }
    }
    md
}

fn pairs_csv(
    plan: &ReachPlanRecord,
    records: &[ReachPairRecord],
    names: &dyn Fn(u32) -> String,
) -> String {
    let mut csv = String::from(
        "pair_id,source_image,source_class,target_image,target_class,status,valid,p0,final_source_confidence,final_target_confidence,lpips,relative_l2,l2_normalized,linf,accepted_steps\n",
    );
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for r in records {
        let source = &plan.sources[r.source];
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.pair_id,
            quote(&format!("{}#{}", plan.dataset, source.dataset_index)),
            quote(&names(r.source_class)),
            quote(&plan.targets[r.target].image),
            quote(&names(r.target_class)),
            quote(&r.status.label()),
            r.valid(),
            r.p0,
            r.final_source_confidence,
            r.final_target_confidence,
            r.lpips.map_or(String::new(), |v| v.to_string()),
            r.relative_l2,
            r.l2_normalized,
            r.linf,
            r.accepted_steps
        );
    }
    csv
}

/// The hit-rate matrix heatmap (§2.4).
pub fn hit_matrix_figure(s: &ReachSummary) -> figures::Figure {
    figures::fraction_matrix(&MatrixFigureData {
        row_labels: s.class_names.clone(),
        column_labels: s.class_names.clone(),
        row_title: "source class".into(),
        column_title: "target class".into(),
        values: s.hit_matrix.clone(),
        value_label: "hit rate".into(),
        title: format!(
            "NSPGD hit rate ({}), {}",
            s.criterion.label(),
            s.model.label()
        ),
    })
}

/// The 10×10 examples grid (§2.4): row = target class, column = source class; each cell is
/// the walk of the first valid source of the column's class toward the row's target, labelled
/// with p(source class); the diagonal shows the target itself.
fn examples_grid(
    out: &Path,
    plan: &ReachPlanRecord,
    s: &ReachSummary,
    records: &[ReachPairRecord],
    target_pixels: &[Vec<f32>],
    shape: [usize; 3],
) -> Result<figures::Figure> {
    let k = plan.targets.len();
    let mut cells: Vec<Vec<Option<GridCell>>> = vec![vec![None; k]; k];
    for (t, target) in plan.targets.iter().enumerate() {
        // The target's own confidence is its pair toward itself, when it is one of the sources.
        let own = records.iter().find(|r| {
            r.target == t && plan.sources[r.source].dataset_index == target.dataset_index
        });
        cells[t][t] = Some(GridCell {
            image: display_rgb(&target_pixels[t], shape)?,
            source_confidence: own.map_or(f32::NAN, |r| r.p0),
        });
    }
    for (col, &class) in plan.classes.iter().enumerate() {
        for t in (0..k).filter(|&t| t != col) {
            let first = records
                .iter()
                .find(|r| r.target == t && r.source_class == class && r.valid());
            if let Some(r) = first {
                let x = load_x_final(out, r.pair_id)?;
                cells[t][col] = Some(GridCell {
                    image: display_rgb(&x, shape)?,
                    source_confidence: r.final_source_confidence,
                });
            }
        }
    }
    Ok(figures::pairs_grid(&GridFigureData {
        k,
        class_names: s.class_names.clone(),
        cells,
        title: format!(
            "NSPGD outputs (row = target, column = source), {}",
            s.model.label()
        ),
        diagonal: "the target itself",
    }))
}

/// Writes every output of a finished evaluation into `out`.
pub fn write_outputs(
    out: &Path,
    plan: &ReachPlanRecord,
    s: &ReachSummary,
    records: &[ReachPairRecord],
    target_pixels: &[Vec<f32>],
    shape: [usize; 3],
) -> Result<()> {
    let json_path = out.join(SUMMARY_JSON);
    let json = serde_json::to_vec_pretty(s).map_err(|source| crate::record::RecordError::Json {
        path: json_path.clone(),
        source,
    })?;
    write_atomic(&json_path, &json)?;
    let names = |c: u32| {
        plan.classes
            .iter()
            .position(|&k| k == c)
            .map_or_else(|| c.to_string(), |p| plan.class_names[p].clone())
    };
    write_atomic(
        &out.join("pairs.csv"),
        pairs_csv(plan, records, &names).as_bytes(),
    )?;
    write_atomic(
        &out.join("summary.md"),
        summary_markdown(plan, s).as_bytes(),
    )?;
    let figures = [
        ("hit_matrix", hit_matrix_figure(s)),
        (
            "examples_grid",
            examples_grid(out, plan, s, records, target_pixels, shape)?,
        ),
    ];
    for (name, figure) in figures {
        figure.write_png(&out.join(format!("{name}.png")), 2.0)?;
        figure.write_svg(&out.join(format!("{name}.svg")))?;
    }
    Ok(())
}
