//! The Semantic view's 2-D maps on the GPU, through the hull heatmap's pipeline and shader
//! (`heatmap::HeatmapGpu`): a square N × N grid is two triangular lattices of resolution
//! n = N − 1 that share the diagonal, each drawn by one paint callback. The field is
//! interpolated per fragment and coloured by the same 100-level map as the PNG/SVG figure.
//!
//! The hull keeps one `HeatmapGpu` in egui's callback resources; uploads of every callback of
//! a frame happen before any of them paints, so the maps here (two triangles × two models)
//! each need their own buffers: they live in [`SemanticHeatmaps`], one per slot.

use eframe::egui_wgpu::{self, wgpu};

use crate::figures::Colormap;

use super::heatmap::{HeatmapFrame, HeatmapGpu, RenderError};

/// Triangles drawn per frame at most: two per map, two maps.
pub const SLOTS: usize = 4;

/// The colour map of the semantic maps, as in `figures::semantic_map`: blue high, red low.
pub const COLORMAP: Colormap = Colormap::RdBu;

pub struct SemanticHeatmaps {
    slots: Vec<HeatmapGpu>,
}

/// Registers the pipelines with egui's renderer (once, at start-up).
pub fn register(render_state: &egui_wgpu::RenderState) -> Result<(), RenderError> {
    let slots = (0..SLOTS)
        .map(|_| HeatmapGpu::new(&render_state.device, render_state.target_format))
        .collect::<Result<Vec<_>, _>>()?;
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(SemanticHeatmaps { slots });
    Ok(())
}

/// Draws one triangle of a map with the pipeline of `slot`.
pub struct SemanticCallback {
    pub slot: usize,
    pub frame: HeatmapFrame,
}

impl egui_wgpu::CallbackTrait for SemanticCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(gpu) = resources
            .get_mut::<SemanticHeatmaps>()
            .and_then(|h| h.slots.get_mut(self.slot))
        {
            gpu.upload(device, queue, &self.frame);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(gpu) = resources
            .get::<SemanticHeatmaps>()
            .and_then(|h| h.slots.get(self.slot))
        {
            gpu.draw(pass);
        }
    }
}

/// The two triangles of an N × N map (`values` row-major, the first parameter along rows,
/// drawn upward; missing values read 0), filling the whole callback rect:
/// the lower-left one from (0, 0) and the upper-right one from (N−1, N−1). `None` below 2 × 2.
pub fn square_frames(values: &[f64], points: usize, contours: &[f32]) -> Option<[HeatmapFrame; 2]> {
    if points < 2 {
        return None;
    }
    let n = points - 1;
    let at = |i: usize, j: usize| values.get(i * points + j).map_or(0.0, |v| *v as f32);
    let lattice = |f: &dyn Fn(usize, usize) -> f32| {
        let mut out = Vec::with_capacity((n + 1) * (n + 2) / 2);
        for i in 0..=n {
            for j in 0..=(n - i) {
                out.push(f(i, j));
            }
        }
        out
    };
    let (bl, tl, br, tr) = ([-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]);
    let frame = |confidences, corners_ndc| HeatmapFrame {
        n,
        confidences,
        corners_ndc,
        contours: contours.to_vec(),
        colormap: COLORMAP,
    };
    Some([
        // Lattice (i, j) is grid (i, j): i upward from the bottom-left, j rightward.
        frame(lattice(&|i, j| at(i, j)), [bl, tl, br]),
        // Lattice (i, j) is grid (n − i, n − j): i downward from the top-right, j leftward.
        frame(lattice(&|i, j| at(n - i, n - j)), [tr, br, tl]),
    ])
}

/// The piecewise-linear field the two triangles draw at fractional grid coordinates
/// (row r, column c) in [0, N−1]², for tests that read the pixels back.
pub fn square_field(values: &[f64], points: usize, r: f64, c: f64) -> f32 {
    let n = (points - 1) as f64;
    let lower = r + c <= n;
    let (frames, u, v) = match square_frames(values, points, &[]) {
        Some(f) if lower => (f, r, c),
        Some(f) => (f, n - r, n - c),
        None => return 0.0,
    };
    let which = usize::from(!lower);
    crate::figures::lattice_field(points - 1, &frames[which].confidences, u, v)
}
