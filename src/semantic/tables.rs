//! The SRVR table (§3.8: one row per model) as Markdown and CSV, the per-class table, and the
//! §3.7 cost table with the numbers filled in.

use std::fmt::Write;

use super::EvalRecord;
use crate::analysis::semantic::{MapStats, cost_table};

fn percent(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

fn map_cells(map: Option<MapStats>) -> [String; 3] {
    match map {
        Some(m) => [
            format!("{:.3}", m.mean),
            percent(m.fraction_at_least_0_1),
            percent(m.fraction_at_least_0_5),
        ],
        None => ["n/a".into(), "n/a".into(), "n/a".into()],
    }
}

/// One row per (name, evaluation), then each evaluation's per-class rows.
pub fn srvr_markdown(runs: &[(&str, &EvalRecord)]) -> String {
    let mut out = String::new();
    let header = "| model | images | skipped | SRVR Naive | SRVR OIR_B | SRVR OIR_W | SRVR combined | mean f over the map | map f ≥ 0.1 | map f ≥ 0.5 |\n|---|---|---|---|---|---|---|---|---|---|\n";
    out.push_str(header);
    for (name, run) in runs {
        let skipped = run.skipped.len();
        match &run.summary {
            Some(s) => {
                let [mean, f01, f05] = map_cells(s.map);
                let v = s.srvr;
                let _ = writeln!(
                    out,
                    "| {name} | {} | {skipped} | {} | {} | {} | {} | {mean} | {f01} | {f05} |",
                    s.images,
                    percent(v.naive),
                    percent(v.oir_b),
                    percent(v.oir_w),
                    percent(v.combined)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {name} | 0 | {skipped} | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"
                );
            }
        }
    }
    for (name, run) in runs {
        let Some(s) = &run.summary else { continue };
        let _ = writeln!(out, "\nPer class, {name}:\n");
        out.push_str("| class | images | SRVR Naive | SRVR OIR_B | SRVR OIR_W | SRVR combined | mean f over the map |\n|---|---|---|---|---|---|---|\n");
        for c in &s.per_class {
            let v = c.srvr;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                c.name,
                c.images,
                percent(v.naive),
                percent(v.oir_b),
                percent(v.oir_w),
                percent(v.combined),
                map_cells(c.map)[0]
            );
        }
    }
    out
}

/// The model row and the per-class rows as CSV (fractions, not percent).
pub fn srvr_csv(name: &str, run: &EvalRecord) -> String {
    let mut out = String::from(
        "scope,images,srvr_naive,srvr_oir_b,srvr_oir_w,srvr_combined,map_mean_f,map_frac_ge_0_1,map_frac_ge_0_5\n",
    );
    let Some(s) = &run.summary else {
        return out;
    };
    let row = |out: &mut String,
               scope: &str,
               images: usize,
               v: crate::analysis::semantic::srvr::SrvrValues,
               m: Option<MapStats>| {
        let m = m.map_or([String::new(), String::new(), String::new()], |m| {
            [
                m.mean.to_string(),
                m.fraction_at_least_0_1.to_string(),
                m.fraction_at_least_0_5.to_string(),
            ]
        });
        let _ = writeln!(
            out,
            "{scope},{images},{},{},{},{},{},{},{}",
            v.naive, v.oir_b, v.oir_w, v.combined, m[0], m[1], m[2]
        );
    };
    row(&mut out, name, s.images, s.srvr, s.map);
    for c in &s.per_class {
        row(
            &mut out,
            &format!("class:{}", c.name.replace(',', " ")),
            c.images,
            c.srvr,
            c.map,
        );
    }
    out
}

/// §3.7 with n, T and N filled in.
pub fn cost_markdown(n: usize, iterations: usize, points: usize, log_loss: bool) -> String {
    let mut out = format!(
        "Cost of the paradigms for n = {n} parameters, T = {iterations} iterations, N = {points} grid points per axis (fwd: forward through T and the model; grad: backward to u).\n\n| paradigm | direction | fwd per step | grad per step | total fwd | total grad | black-box | finds |\n|---|---|---|---|---|---|---|---|\n"
    );
    for r in cost_table(n, iterations, points, log_loss) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.paradigm,
            r.direction,
            r.forward_per_step,
            r.gradient_per_step,
            r.total_forward,
            r.total_gradient,
            if r.black_box {
                "yes"
            } else {
                "no (needs ∂f/∂u)"
            },
            r.finds
        );
    }
    out
}
