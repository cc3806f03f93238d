//! Turning the panels' actions into worker commands, dialogs and state changes.

use std::sync::Arc;

use super::BlindspotApp;
use super::Planned;
use super::background::Done;
use super::state::{Action, ActiveJob, HullSide, JobKind, PendingHull, Tab};
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
                self.start_traverse(source.clone(), target.clone(), None, None);
                self.plan_on_model_b(source, target);
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
                self.state.hull.pending.clear();
            }
            Action::HullWithRun(i) => {
                if let (Some(a), Some(b)) = (
                    self.state.shown_lst_run().cloned(),
                    self.state.runs.get(i).cloned(),
                ) && !self.state.is_busy()
                {
                    self.start_hull([a, b], HullSide::Main, None);
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
                let t1 = ImageSource::parse(&first.record.target.path);
                let t2 = self.state.slot(Slot::SecondTarget).source.clone();
                let mut pending = PendingHull::new(HullSide::Main, None);
                pending.first = Some(first);
                self.state.hull.pending = vec![pending];
                self.start_traverse(source.clone(), t2.clone(), None, Some(HullSide::Main));
                self.plan_hull_on_model_b(source, t1, t2);
            }
            Action::HullRunBoth => {
                if self.state.is_busy() {
                    return;
                }
                let source = self.state.slot(Slot::Source).source.clone();
                let t1 = self.state.slot(Slot::Target).source.clone();
                let t2 = self.state.slot(Slot::SecondTarget).source.clone();
                self.state.hull.pending = vec![PendingHull::new(HullSide::Main, None)];
                self.queue.push_back(Planned::Traverse {
                    source: source.clone(),
                    target: t2.clone(),
                    model: None,
                    for_hull: Some(HullSide::Main),
                });
                self.start_traverse(source.clone(), t1.clone(), None, Some(HullSide::Main));
                self.plan_hull_on_model_b(source, t1, t2);
            }
            Action::HullOnModelB => {
                if self.state.is_busy() {
                    return;
                }
                let Some([a, b]) = self.state.hull.main.runs.clone() else {
                    return;
                };
                let path = |p: &str| ImageSource::parse(p);
                self.plan_hull_on_model_b(
                    path(&a.record.source.path),
                    path(&a.record.target.path),
                    path(&b.record.target.path),
                );
                self.start_next();
            }
            Action::PinHull => {
                if !self.state.is_busy() {
                    self.state.hull.pin();
                }
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
                if let Some(run) = self.state.runs.get(i).cloned()
                    && self.state.live.is_none()
                {
                    self.state.shown_run = Some(i);
                    // A finished run opens at its result, x*.
                    self.state.scrub = run.view().scrub_len().saturating_sub(1);
                }
            }
            Action::DeleteRun(dir) => {
                if let Some(h) = self.history.clone() {
                    self.background.spawn(move || {
                        Done::Deleted(h.delete(&dir).map(|()| dir).map_err(|e| e.to_string()))
                    });
                }
            }
            Action::UndoDelete(dir) => {
                if let Some(h) = self.history.clone() {
                    self.background.spawn(move || {
                        Done::Restored(h.undo_delete(&dir).map(|()| dir).map_err(|e| e.to_string()))
                    });
                }
            }
            Action::ReadDataFolder(dir) => {
                self.background.spawn(move || {
                    Done::DataFolder(
                        crate::images::list_dataset(&dir)
                            .map(|d| std::sync::Arc::new((dir, d)))
                            .map_err(|e| e.to_string()),
                    )
                });
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
            Action::DismissAll => self.state.notices.clear(),
            Action::Dialog(purpose) => self.background.dialog(purpose),
        }
        let _ = ctx;
    }

    /// With model B picked, plans its hull of the same triangle after the one being made: its
    /// two traversals, then its lattice, into the hull beside.
    fn plan_hull_on_model_b(&mut self, source: ImageSource, t1: ImageSource, t2: ImageSource) {
        let Some(b) = self.state.compare.model_b.clone() else {
            return;
        };
        self.state
            .hull
            .pending
            .push(PendingHull::new(HullSide::Compare, Some(b.clone())));
        for target in [t1, t2] {
            self.queue.push_back(Planned::Traverse {
                source: source.clone(),
                target,
                model: Some(b.clone()),
                for_hull: Some(HullSide::Compare),
            });
        }
    }
}
