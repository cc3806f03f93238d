//! Exports (figures, records, heatmap renders) and the results of background jobs.

use std::path::PathBuf;

use super::BlindspotApp;
use super::background::{DialogPurpose, Done, ImagesFor};
use super::export::ExportJob;
use super::panels;
use super::state::{Action, ExportKind, Tab};
use super::worker::{FinishedRun, ImageSource, ModelSource};

impl BlindspotApp {
    pub(super) fn export(&mut self, kind: ExportKind) {
        let dir_text = self.state.export.dir_text.trim().to_string();
        if dir_text.is_empty() {
            self.state
                .error("Nothing exported", "Choose an export folder first.");
            return;
        }
        let job = match self.export_job(kind) {
            Ok(job) => job,
            Err(e) => {
                self.state
                    .error(format!("Cannot export the {}", kind.label()), e);
                return;
            }
        };
        let dir = PathBuf::from(dir_text);
        let scale = self.state.export.scale.clamp(1.0, 8.0);
        self.state.export.in_flight += 1;
        self.background
            .spawn(move || Done::Exported(job.write(&dir, scale)));
    }

    fn export_job(&self, kind: ExportKind) -> Result<ExportJob, String> {
        let st = &self.state;
        let run = || {
            st.shown_finished()
                .cloned()
                .ok_or_else(|| "no finished run is shown".to_string())
        };
        let hull = || {
            st.hull
                .main
                .report
                .clone()
                .ok_or_else(|| "no hull has been computed".to_string())
        };
        // The finest lattice so far, with the metrics and profiles of n = 10.
        let finest = || -> Result<Box<crate::run::HullReport>, String> {
            let mut report = hull()?;
            if let Some(r) = &st.hull.main.refined {
                report.n = r.n;
                report.confidences = r.confidences.clone();
            }
            Ok(Box::new(report))
        };
        // The hull report keeps only the architecture, which both demo models share: the
        // loaded model's short name when it made the hull.
        let model_name = |report: &crate::run::HullReport| match st.spec() {
            Some(spec) if spec.weights_sha256 == report.weights_sha256 => spec.short_name(),
            _ => report.model.clone(),
        };
        Ok(match kind {
            ExportKind::Run => ExportJob::Run(run()?),
            ExportKind::PathStrip => ExportJob::PathStrip(run()?),
            ExportKind::Confidence => ExportJob::Confidence(run()?),
            ExportKind::Widths => ExportJob::Widths(run()?),
            ExportKind::Profile => {
                let report = hull()?;
                ExportJob::Profile {
                    model: model_name(&report),
                    report: Box::new(report),
                }
            }
            ExportKind::HullFigure => {
                let runs = st
                    .hull
                    .main
                    .runs
                    .as_ref()
                    .ok_or_else(|| "no hull has been computed".to_string())?;
                let shape = runs[0].pixels.shape;
                let rgb = |p: &[f32]| crate::report::rgb(p, shape).map_err(|e| e.to_string());
                let out = |r: &FinishedRun| {
                    r.pixels
                        .output
                        .clone()
                        .ok_or_else(|| "a corner run has no output".to_string())
                };
                let report = finest()?;
                ExportJob::HullFigure {
                    model: model_name(&report),
                    report,
                    corners: [
                        rgb(&runs[0].pixels.source)?,
                        rgb(&out(&runs[0])?)?,
                        rgb(&out(&runs[1])?)?,
                    ],
                    contours: st.hull.drawn_contours(),
                    colormap: st.hull.colormap,
                }
            }
            ExportKind::HullRender => {
                let rs = self
                    .wgpu
                    .as_ref()
                    .ok_or_else(|| "this window has no GPU renderer".to_string())?;
                let report = finest()?;
                ExportJob::HullRender {
                    device: rs.device.clone(),
                    queue: rs.queue.clone(),
                    model: model_name(&report),
                    report,
                    contours: st.hull.drawn_contours(),
                    colormap: st.hull.colormap,
                    size: st.export.heatmap_px.clamp(256, 8192),
                }
            }
            ExportKind::Grid => {
                let (grid, model) = st
                    .grid
                    .result
                    .clone()
                    .ok_or_else(|| "no grid has been computed".to_string())?;
                ExportJob::Grid { grid, model }
            }
            ExportKind::FrequencyRecord | ExportKind::FrequencyPlot => {
                ExportJob::Frequency(Box::new(st.frequency.export(kind)?))
            }
            ExportKind::ReachFigures => {
                let (Some(summary), Some(out)) = (&st.reach.summary, &st.reach.out) else {
                    return Err("no reach evaluation has run".into());
                };
                if st.reach.figures().is_empty() {
                    return Err("the reach evaluation is not complete: its figures are \
                                written when every pair is done"
                        .into());
                }
                ExportJob::ReachFigures {
                    summary: Box::new(summary.clone()),
                    out: out.clone(),
                }
            }
        })
    }

    // ----- background results ----------------------------------------------------------------

    pub(super) fn drain_background(&mut self) {
        while let Some(done) = self.background.try_recv() {
            match done {
                Done::Dialog { purpose, paths } => {
                    let Some(path) = paths.into_iter().next() else {
                        continue;
                    };
                    match purpose {
                        DialogPurpose::Model => {
                            self.state.act(Action::LoadModel(ModelSource::File(path)));
                        }
                        DialogPurpose::Image(slot) => {
                            self.state
                                .act(Action::PickImage(slot, ImageSource::File(path)));
                        }
                        DialogPurpose::GridImage => {
                            if self.state.grid.images.len() < panels::grid::MAX_IMAGES {
                                self.state.grid.images.push(ImageSource::File(path));
                            }
                        }
                        DialogPurpose::Run => self.state.act(Action::OpenRun(path)),
                        DialogPurpose::ExportDir => {
                            self.state.export.dir_text = path.display().to_string();
                        }
                        DialogPurpose::ImagesFolder(view) | DialogPurpose::ImagesFile(view) => {
                            let text = path.display().to_string();
                            match view {
                                ImagesFor::Reach => self.state.reach.images_text = text,
                                ImagesFor::Frequency => {
                                    self.state.frequency.folder_text = text;
                                    self.state.frequency.use_gallery = false;
                                }
                            }
                        }
                        DialogPurpose::ReachOut => {
                            self.state.reach.out_text = path.display().to_string();
                        }
                    }
                }
                Done::NoDialog(purpose) => {
                    let why = if cfg!(target_os = "linux") {
                        "no xdg-desktop-portal or zenity"
                    } else {
                        "the system's dialog did not open"
                    };
                    self.state.error(
                        "No file dialog is available",
                        format!(
                            "No file dialog is available ({why}): {}.",
                            purpose.without_dialog()
                        ),
                    );
                }
                Done::Exported(result) => {
                    self.state.export.in_flight = self.state.export.in_flight.saturating_sub(1);
                    match result {
                        Ok(message) => self.state.export.last = Some(message),
                        Err(e) => self.state.error("Export failed", e),
                    }
                }
                Done::History(result) => match result {
                    Ok((entries, problems)) => {
                        self.state.history.entries = entries;
                        self.state.history.problems = problems;
                    }
                    Err(e) => self.state.error("Cannot read the run history", e),
                },
                Done::RunOpened(result) => match result {
                    Ok(run) => {
                        let i = self.state.add_run(run);
                        if self.state.live.is_none() {
                            self.state.shown_run = Some(i);
                            // A finished run opens at its result, x*.
                            self.state.scrub =
                                self.state.runs[i].view().scrub_len().saturating_sub(1);
                            self.state.tab = Tab::Traversal;
                        }
                    }
                    Err(e) => self.state.error("Cannot open the run", e),
                },
                Done::Opened(result) => match result {
                    Ok(dir) => self.state.export.last = Some(format!("opened {}", dir.display())),
                    Err(e) => self.state.error("Cannot open the folder", e),
                },
                Done::Deleted(result) => match result {
                    Ok(dir) => {
                        self.state.history.entries.retain(|e| e.dir != dir);
                        self.state.export.last = Some(format!("deleted {}", dir.display()));
                        self.state.history.last_deleted = Some(dir);
                    }
                    Err(e) => self.state.error("Cannot delete the run", e),
                },
                Done::DataFolder(result) => match result {
                    Ok(data) => self.state.data_folder = Some(data),
                    Err(e) => self.state.error("Cannot read the data folder", e),
                },
                Done::Restored(result) => match result {
                    Ok(dir) => {
                        self.state.history.last_deleted = None;
                        self.state.export.last = Some(format!("restored {}", dir.display()));
                        self.state.act(Action::RefreshHistory);
                    }
                    Err(e) => self.state.error("Cannot bring the run back", e),
                },
            }
        }
    }
}
