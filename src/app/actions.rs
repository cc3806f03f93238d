//! Turning the panels' actions into worker commands, dialogs and state changes.

use std::sync::Arc;

use super::BlindspotApp;
use super::Planned;
use super::background::Done;
use super::state::{Action, ActiveJob, JobKind, PendingHull, Tab};
use super::worker::{Command, FinishedRun, ImageSource, Slot};

impl BlindspotApp {
    // ----- actions ---------------------------------------------------------------------------

    pub(super) fn process_actions(&mut self, ctx: &egui::Context) {
        let actions = std::mem::take(&mut self.state.actions);
        for action in actions {
            self.perform(action, ctx);
        }
    }

    fn perform(&mut self, action: Action, ctx: &egui::Context) {
        match action {
            Action::LoadModel(source) => {
                if !self.state.is_busy() {
                    self.load_model(source);
                }
            }
            Action::PickImage(slot, source) => {
                if !self.state.is_busy() {
                    self.pick_image(slot, source);
                }
            }
            Action::SwapImages => {
                if !self.state.is_busy() {
                    self.state.images.swap(0, 1);
                }
            }
            Action::Run => {
                if self.state.is_busy() {
                    return;
                }
                let source = self.state.slot(Slot::Source).source.clone();
                let target = self.state.slot(Slot::Target).source.clone();
                self.start_traverse(source, target, false);
                self.state.tab = Tab::Traversal;
            }
            Action::PauseResume => {
                if let Some(job) = self.state.job.as_mut() {
                    let now = std::time::Instant::now();
                    match job.paused_since.take() {
                        Some(since) => {
                            job.paused_for += now - since;
                            job.control.set_paused(false);
                        }
                        None => {
                            job.paused_since = Some(now);
                            job.control.set_paused(true);
                        }
                    }
                }
            }
            Action::Cancel => {
                if let Some(job) = &self.state.job {
                    job.control.cancel();
                }
                self.queue.clear();
                self.state.hull.pending = None;
            }
            Action::HullWithRun(i) => {
                if let (Some(a), Some(b)) = (
                    self.state.shown_lst_run().cloned(),
                    self.state.runs.get(i).cloned(),
                ) && !self.state.is_busy()
                {
                    self.start_hull([a, b]);
                }
            }
            Action::HullWithSecondTarget => {
                if self.state.is_busy() {
                    return;
                }
                let Some(first) = self.state.shown_lst_run().cloned() else {
                    return;
                };
                let source = ImageSource::parse(&first.record.source.path);
                let target = self.state.slot(Slot::SecondTarget).source.clone();
                self.state.hull.pending = Some(PendingHull {
                    jobs: Vec::new(),
                    done: Vec::new(),
                    first: Some(first),
                });
                self.start_traverse(source, target, true);
            }
            Action::HullRunBoth => {
                if self.state.is_busy() {
                    return;
                }
                let source = self.state.slot(Slot::Source).source.clone();
                let t1 = self.state.slot(Slot::Target).source.clone();
                let t2 = self.state.slot(Slot::SecondTarget).source.clone();
                self.state.hull.pending = Some(PendingHull::default());
                self.queue.push_back(Planned::Traverse {
                    source: source.clone(),
                    target: t2,
                    for_hull: true,
                });
                self.start_traverse(source, t1, true);
            }
            Action::Grid => {
                if self.state.is_busy() {
                    return;
                }
                let id = self.state.next_id();
                let images = self.state.grid.images.clone();
                // The grid shows outputs only: widths would cost 256 passes per radius and frame
                // for every one of its K(K-1) pairs.
                let mut config = self.state.config.clone();
                config.width.enabled = false;
                let job = ActiveJob::new(
                    id,
                    JobKind::Grid,
                    self.state.config.iterations,
                    format!("all-pairs grid of {} images", images.len()),
                );
                let control = job.control.clone();
                self.state.job = Some(job);
                self.state.grid.job = Some(id);
                self.state.grid.progress = Some((0, self.state.config.iterations));
                self.worker.send(Command::Grid {
                    job: id,
                    images,
                    config,
                    control,
                });
            }
            Action::Reach => {
                if !self.state.is_busy()
                    && let Err(e) = self.start_reach()
                {
                    self.state.error("Cannot start the reach evaluation", e);
                }
            }
            Action::Semantic(action) => self.semantic_action(action),
            Action::Frequency => {
                if !self.state.is_busy()
                    && let Err(e) = self.start_frequency()
                {
                    self.state.error("Cannot start the frequency margins", e);
                }
            }
            Action::OpenFolder(dir) => self.background.open_folder(dir),
            Action::OpenRun(dir) => {
                self.background.spawn(move || {
                    Done::RunOpened(
                        crate::record::RunRecord::load_with_pixels(&dir)
                            .map(|(record, pixels)| {
                                Arc::new(FinishedRun {
                                    record,
                                    pixels,
                                    dir: Some(dir.clone()),
                                })
                            })
                            .map_err(|e| e.to_string()),
                    )
                });
            }
            Action::ShowRun(i) => {
                if i < self.state.runs.len() && self.state.live.is_none() {
                    self.state.shown_run = Some(i);
                    self.state.scrub = 0;
                }
            }
            Action::DeleteRun(dir) => {
                if let Some(h) = self.history.clone() {
                    self.background.spawn(move || {
                        Done::Deleted(h.delete(&dir).map(|()| dir).map_err(|e| e.to_string()))
                    });
                }
            }
            Action::RefreshHistory => {
                if let Some(h) = self.history.clone() {
                    self.background
                        .spawn(move || Done::History(h.list().map_err(|e| e.to_string())));
                }
            }
            Action::Export(kind) => self.export(kind),
            Action::Dismiss(i) => {
                if i < self.state.notices.len() {
                    self.state.notices.remove(i);
                }
            }
            Action::Dialog(purpose) => self.background.dialog(purpose),
        }
        let _ = ctx;
    }
}
