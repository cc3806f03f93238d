//! The app's side of a reach evaluation: starting it from the Reach tab's settings, and
//! applying the worker's updates to the tab and the status bar.

use super::BlindspotApp;
use super::state::{ActiveJob, JobKind};
use super::worker::{Command, JobId, ReachRequest, ReachUpdate};

impl BlindspotApp {
    /// Starts (or resumes) the reach evaluation of the Reach tab with the loaded model and
    /// NSPGD's settings.
    pub(super) fn start_reach(&mut self) -> Result<(), String> {
        let st = &self.state;
        let (model, _) = st
            .model
            .loaded
            .clone()
            .ok_or_else(|| "no model is loaded".to_string())?;
        let images = st.reach.images()?;
        let options = st.reach.options(&st.nspgd)?;
        let runs = self.history.as_ref().map(|h| h.root().to_path_buf());
        let out = st.reach.out_dir(runs.as_deref(), &model, &options)?;
        let pool = st.reach.pool();
        let id = self.state.next_id();
        let job = ActiveJob::new(id, JobKind::Reach, 0, "reach: planning".into());
        let control = job.control.clone();
        self.state.job = Some(job);
        self.state.reach.begin(id);
        self.worker.send(Command::Reach(Box::new(ReachRequest {
            job: id,
            images,
            options,
            out,
            pool,
            control,
        })));
        Ok(())
    }

    pub(super) fn apply_reach(&mut self, job: JobId, update: ReachUpdate) {
        let st = &mut self.state;
        let done = matches!(update, ReachUpdate::Done(_));
        let on_disk = match &update {
            ReachUpdate::Started { done, .. } => Some(done.len()),
            _ => None,
        };
        let Some(progress) = st.reach.apply(job, update) else {
            return;
        };
        if let Some(j) = st.job.as_mut().filter(|j| j.id == job) {
            j.progress = progress;
            if let Some(n) = on_disk {
                j.already_done = n;
            }
            if let Some((step, iterations, walking)) = st.reach.step {
                j.what = format!(
                    "reach: iteration {}/{iterations} of {walking} pairs",
                    step + 1
                );
            }
        }
        if let Some(e) = st.reach.error.take() {
            st.error("The reach evaluation did not run", e);
        }
        if done {
            if st.job.as_ref().is_some_and(|j| j.id == job) {
                st.job = None;
            }
            self.start_next();
        }
    }
}
