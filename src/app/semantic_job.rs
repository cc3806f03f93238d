//! The app's side of the Semantic view's jobs: starting a map, a region or an export from the
//! view's settings, and applying the worker's updates to the view and the status bar.

use super::BlindspotApp;
use super::export::{free_stem, name_part, timestamp};
use super::semantic_state::{SemanticAction, SemanticJob};
use super::state::{ActiveJob, JobKind};
use super::worker::{
    Command, JobId, ModelBExport, SemanticRequest, SemanticTask, SemanticUpdate, Slot,
};

impl BlindspotApp {
    /// Runs what the Semantic view asked for; a refusal (bad settings, busy) is a notice.
    pub(super) fn semantic_action(&mut self, action: SemanticAction) {
        if self.state.is_busy() {
            return;
        }
        let (title, result) = match action {
            SemanticAction::Map => ("Cannot start the semantic map", self.start_semantic_map()),
            SemanticAction::Grow(start_u) => {
                ("Cannot grow a region", self.start_semantic_regions(start_u))
            }
            SemanticAction::Export => ("Cannot export the semantic record", self.semantic_export()),
        };
        if let Err(e) = result {
            self.state.error(title, e);
        }
    }

    fn channels(&self) -> Result<usize, String> {
        self.state
            .spec()
            .map(|s| s.channels)
            .ok_or_else(|| "no model is loaded".to_string())
    }

    fn send_semantic(&mut self, kind: SemanticJob, total: usize, what: String, task: SemanticTask) {
        let Some(setup) = self.state.semantic.setup.clone() else {
            return;
        };
        let id = self.state.next_id();
        let job = ActiveJob::new(id, JobKind::Semantic, total, what);
        let control = job.control.clone();
        self.state.job = Some(job);
        self.state.semantic.begin(id, kind);
        self.worker
            .send(Command::Semantic(Box::new(SemanticRequest {
                job: id,
                setup,
                task,
                control,
            })));
    }

    fn start_semantic_map(&mut self) -> Result<(), String> {
        let source = self.state.slot(Slot::Source).source.clone();
        let st = &self.state.semantic;
        let setup = st.setup(&source, self.channels()?)?;
        let points = st.points();
        let total = points.pow(setup.params.len() as u32);
        let model_b = st.model_b.clone();
        let what = format!(
            "semantic map of {} ({} points)",
            setup.image.label(),
            total * (1 + usize::from(model_b.is_some()))
        );
        self.state.semantic.setup = Some(setup);
        self.state.semantic.mapped_b = model_b.clone();
        self.send_semantic(
            SemanticJob::Map,
            total,
            what,
            SemanticTask::Map { points, model_b },
        );
        Ok(())
    }

    fn start_semantic_regions(&mut self, start_u: Vec<f64>) -> Result<(), String> {
        let st = &self.state.semantic;
        let setup = st
            .setup
            .clone()
            .ok_or_else(|| "compute a map first, then click on it".to_string())?;
        if start_u.len() != setup.params.len() {
            return Err("the clicked point does not match the map's parameters".into());
        }
        let config = st.region_config(setup.params.len())?;
        let methods = st.method.methods();
        // Model B's regions grow too once its map is there, for the class that map shows.
        let model_b = match (&st.mapped_b, &st.maps[1]) {
            (Some(source), Some(map)) if map.is_complete() => {
                Some((source.clone(), map.class.class))
            }
            _ => None,
        };
        let what = format!(
            "growing {} from the clicked point{}",
            st.method.label(),
            if model_b.is_some() {
                " on both models"
            } else {
                ""
            }
        );
        let total = config.iterations;
        self.send_semantic(
            SemanticJob::Regions,
            total,
            what,
            SemanticTask::Regions {
                start_u,
                methods,
                config,
                model_b,
            },
        );
        Ok(())
    }

    fn semantic_export(&mut self) -> Result<(), String> {
        let dir_text = self.state.export.dir_text.trim().to_string();
        if dir_text.is_empty() {
            return Err("choose an export folder first".into());
        }
        let dir = std::path::PathBuf::from(dir_text);
        let st = &self.state.semantic;
        let setup = st
            .setup
            .clone()
            .ok_or_else(|| "nothing to export: compute a map first".to_string())?;
        let map = st.maps[0].as_ref().map(|m| m.map());
        let regions = st.finished_regions(0);
        let kind = if regions.is_empty() { "map" } else { "regions" };
        let names: Vec<&str> = setup.params.iter().map(|p| p.name()).collect();
        let model = st.maps[0]
            .as_ref()
            .map_or("model".into(), |m| m.model.clone());
        // Named like every export: what (method and parameters), the image, the model, when.
        let what = format!("semantic-{kind}-{}", names.join("-"));
        let stem = [
            name_part(&what),
            name_part(&setup.image.label()),
            name_part(&model),
            timestamp(std::time::SystemTime::now()),
        ]
        .join("_");
        let out = dir.join(free_stem(&dir, &stem, &[]));
        let b = match (&st.mapped_b, &st.maps[1]) {
            (Some(source), Some(m)) if m.is_complete() => Some(ModelBExport {
                source: source.clone(),
                map: m.map(),
                regions: st.finished_regions(1),
                out: dir.join(free_stem(
                    &dir,
                    &format!("{stem}_b-{}", name_part(&m.model)),
                    &[],
                )),
            }),
            _ => None,
        };
        let task = SemanticTask::Export {
            out,
            map,
            regions,
            config: st.config.clone(),
            b,
            seconds: st.seconds,
        };
        self.send_semantic(SemanticJob::Export, 0, "semantic export".into(), task);
        Ok(())
    }

    pub(super) fn apply_semantic(&mut self, job: JobId, update: SemanticUpdate) {
        let done = matches!(update, SemanticUpdate::Done(_));
        let st = &mut self.state;
        let Some(progress) = st.semantic.apply(job, update) else {
            return;
        };
        if let Some(j) = st.job.as_mut().filter(|j| j.id == job) {
            j.progress = progress;
        }
        if let Some(e) = st.semantic.error.take() {
            st.error("The semantic job failed", e);
        }
        if done {
            if !st.semantic.exported.is_empty() {
                let paths: Vec<String> = st
                    .semantic
                    .exported
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                st.export.last = Some(format!("wrote {}", paths.join(" and ")));
            }
            if st.job.as_ref().is_some_and(|j| j.id == job) {
                st.job = None;
            }
            self.start_next();
        }
    }
}
