//! Applying the worker's events to the app state (one `match` over `worker::Event`).

use std::sync::Arc;

use super::BlindspotApp;
use super::state::{AppState, LiveRun, Preset, Tab};
use super::worker::{Event, LpipsStatus, ModelSource, Slot};

impl BlindspotApp {
    pub(super) fn apply(&mut self, event: Event) {
        let st = &mut self.state;
        match event {
            Event::ModelReady { source, spec } => {
                if let ModelSource::File(p) = &source {
                    AppState::remember(&mut st.recent_models, p);
                }
                if st.preset != Preset::Custom {
                    st.preset = Preset::for_input(spec.input_size);
                    if let Some(c) = st.preset.config() {
                        let widths = st.config.width.enabled;
                        st.config = c;
                        st.config.width.enabled = widths;
                    }
                }
                st.model.loading = None;
                st.model.loaded = Some((source, Arc::from(spec)));
                for slot in [Slot::Source, Slot::Target, Slot::SecondTarget] {
                    self.request_preview(slot);
                }
            }
            Event::Lpips(status) => {
                if let LpipsStatus::Failed(error) = &status {
                    st.error("LPIPS weights not loaded (LPIPS reads n/a)", error.clone());
                }
                st.model.lpips = Some(status);
            }
            Event::ModelFailed { source, error } => {
                st.model.loading = None;
                let still = st
                    .model
                    .loaded
                    .as_ref()
                    .map_or("no model is loaded".to_string(), |(s, _)| {
                        format!("still using {}", s.label())
                    });
                st.error(
                    format!("Cannot load model {}", source.label()),
                    format!("{error} ({still})"),
                );
            }
            Event::Preview {
                slot,
                request,
                result,
            } => {
                let s = st.slot_mut(slot);
                if s.request != request {
                    return;
                }
                match result {
                    Ok(p) => {
                        s.preview = Some(Arc::from(p));
                        s.error = None;
                        s.previous = None;
                    }
                    Err(e) => {
                        let label = s.source.label();
                        let detail = match s.previous.take() {
                            // A bad pick keeps the image the slot had (a bad model keeps the
                            // model the same way).
                            Some((source, preview)) => {
                                let kept = source.label();
                                *s = super::state::ImageSlot::new(source);
                                s.preview = Some(preview);
                                format!("{e} (still using {kept})")
                            }
                            None => {
                                s.preview = None;
                                e
                            }
                        };
                        s.error = Some(format!("{label}: {detail}"));
                        st.error(format!("Cannot use image {label}"), detail);
                    }
                }
            }
            Event::RunStarted {
                job,
                config,
                source,
                target,
                p0,
            } => {
                if st.job.as_ref().is_some_and(|j| j.id == job) {
                    st.live = Some(LiveRun {
                        job,
                        config: *config,
                        source: Arc::from(source),
                        target: Arc::from(target),
                        p0,
                        recorder: crate::record::RunRecorder::new(),
                        current: None,
                    });
                    st.follow_live = true;
                    st.tab = if st.tab == Tab::History {
                        Tab::Traversal
                    } else {
                        st.tab
                    };
                }
            }
            Event::RunStep {
                job,
                step,
                sample,
                iterate,
                ..
            } => {
                if let Some(live) = st.live.as_mut().filter(|l| l.job == job) {
                    live.recorder.observe(step, &sample);
                    if let Some(x) = iterate {
                        live.current = Some((step, x));
                    }
                }
                if let Some(j) = st.job.as_mut().filter(|j| j.id == job) {
                    j.progress.0 = step + 1;
                }
            }
            Event::RunDone {
                job,
                result,
                history_error,
            } => {
                let second = st
                    .job
                    .as_ref()
                    .is_some_and(|j| j.id == job && j.on_second_model);
                if st.job.as_ref().is_some_and(|j| j.id == job) {
                    st.job = None;
                }
                st.live = None;
                if let Some(e) = history_error {
                    st.error("The run was not saved to the history", e);
                }
                match result {
                    Ok(run) => {
                        let index = st.add_run(run.clone());
                        let beside_shown = st.shown_finished().is_some_and(|s| {
                            crate::app::compare::same_pair(&s.record, &run.record)
                        });
                        if second {
                            // Learnt here: which weights the second model is, so its runs are
                            // not taken for stale ones.
                            st.compare.model_b_sha = Some(run.record.model.weights_sha256.clone());
                        }
                        // The second model's run goes beside the loaded model's run of the
                        // same pair, which stays shown.
                        if !(second && beside_shown) {
                            st.shown_run = Some(index);
                        }
                        // The shown run opens at x* (the live view of the second model's run
                        // moved the scrubber meanwhile).
                        st.scrub = st
                            .shown_finished()
                            .map_or(0, |r| r.view().scrub_len().saturating_sub(1));
                        st.history.loaded_once = false;
                        if let Some(p) = st.hull.pending.iter_mut().find(|p| p.jobs.contains(&job))
                        {
                            p.done.push(run);
                        }
                    }
                    Err(e) => {
                        st.error("The traversal failed", e);
                        self.queue.clear();
                        st.hull.pending.clear();
                    }
                }
                self.start_pending_hull();
                self.start_next();
            }
            Event::HullReport { job, report } => {
                if let Some(side) = st.hull.side_of(job) {
                    let hull = st.hull.side_mut(side);
                    hull.report = Some(*report);
                    hull.refined = None;
                }
            }
            Event::HullRefined { job, evaluation } => {
                if let Some(side) = st.hull.side_of(job) {
                    st.hull.side_mut(side).refined = Some(*evaluation);
                }
            }
            Event::HullProgress {
                job,
                n,
                done,
                total,
            } => {
                let model = st.hull.side_of(job).map(|side| {
                    let hull = st.hull.side_mut(side);
                    hull.progress = Some((n, done, total));
                    hull.model_name().unwrap_or_default()
                });
                if let Some(j) = st.job.as_mut().filter(|j| j.id == job) {
                    j.progress = (done, total);
                    j.what = format!("hull lattice n = {n} · {}", model.unwrap_or_default());
                }
            }
            Event::HullDone { job, result } => {
                if st.job.as_ref().is_some_and(|j| j.id == job) {
                    st.job = None;
                }
                if let Some(side) = st.hull.side_of(job) {
                    let hull = st.hull.side_mut(side);
                    hull.progress = None;
                    hull.job = None;
                }
                if let Err(e) = result {
                    st.error("The hull could not be computed", e);
                    self.queue.clear();
                    st.hull.pending.clear();
                }
                self.start_pending_hull();
                self.start_next();
            }
            Event::GridProgress { job, step, total } => {
                if st.grid.job == Some(job) {
                    st.grid.progress = Some((step, total));
                }
                if let Some(j) = st.job.as_mut().filter(|j| j.id == job) {
                    j.progress = (step, total);
                }
            }
            Event::GridDone { job, result } => {
                if st.job.as_ref().is_some_and(|j| j.id == job) {
                    st.job = None;
                }
                if st.grid.job == Some(job) {
                    st.grid.progress = None;
                    match result {
                        Ok(grid) => {
                            let model = st
                                .spec()
                                .map_or_else(String::new, |s| s.architecture.clone());
                            st.grid.result = Some((grid, model));
                        }
                        Err(e) => st.error("The grid failed", e),
                    }
                }
                self.start_next();
            }
            Event::Reach { job, update } => self.apply_reach(job, update),
            Event::Semantic { job, update } => self.apply_semantic(job, update),
            Event::Frequency { job, update } => self.apply_frequency(job, update),
        }
    }

    // ----- jobs ------------------------------------------------------------------------------
}
