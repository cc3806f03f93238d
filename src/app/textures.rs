//! Model-space pixels ([C, H, W] f32 in [0, 1]) as egui textures, sampled nearest-neighbour so
//! that every model pixel stays a crisp square however far it is zoomed.

use std::collections::HashMap;

use egui::{ColorImage, TextureHandle, TextureOptions};

/// `pixels` [C, H, W] (C = 1 or 3) as an egui image.
pub fn color_image(pixels: &[f32], shape: [usize; 3]) -> ColorImage {
    let [c, h, w] = shape;
    let plane = h * w;
    let to_u8 = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
    let mut rgba = Vec::with_capacity(plane * 4);
    for i in 0..plane {
        let at = |ch: usize| pixels.get(ch.min(c.saturating_sub(1)) * plane + i).copied();
        let (r, g, b) = (
            at(0).unwrap_or(0.0),
            at(1).unwrap_or(0.0),
            at(2).unwrap_or(0.0),
        );
        rgba.extend_from_slice(&[to_u8(r), to_u8(g), to_u8(b), 255]);
    }
    ColorImage::from_rgba_unmultiplied([w, h], &rgba)
}

/// The largest |a − b| over the elements.
pub fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

/// The gain that makes a largest difference of `max` white (1 when there is none).
pub fn difference_gain(max: f32) -> f32 {
    if max > 1e-6 { 1.0 / max } else { 1.0 }
}

/// |a − b| per element times `gain`, clipped to 1. One gain per run keeps frames comparable:
/// a gain per frame would make an early, faint difference look as strong as x*'s.
pub fn difference(a: &[f32], b: &[f32], gain: f32) -> Vec<f32> {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y).abs() * gain).min(1.0))
        .collect()
}

/// The per-element mix w0·a + w1·b + w2·c of three images (a hull point).
pub fn mix(images: [&[f32]; 3], weights: [f32; 3]) -> Vec<f32> {
    images[0]
        .iter()
        .zip(images[1])
        .zip(images[2])
        .map(|((a, b), c)| weights[0] * a + weights[1] * b + weights[2] * c)
        .collect()
}

/// Textures by key, made once per content. Keys name what they show ("run 3 frame 7"); a key
/// whose content changes must change too (the live iterate carries its step).
#[derive(Default)]
pub struct Textures {
    cache: HashMap<String, TextureHandle>,
    /// Keys used this frame; the rest are dropped at the end of it, so memory stays bounded.
    used: Vec<String>,
}

impl Textures {
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        key: &str,
        make: impl FnOnce() -> ColorImage,
    ) -> TextureHandle {
        self.used.push(key.to_string());
        if let Some(t) = self.cache.get(key) {
            return t.clone();
        }
        let handle = ctx.load_texture(key, make(), TextureOptions::NEAREST);
        self.cache.insert(key.to_string(), handle.clone());
        handle
    }

    /// Drops the textures no view asked for this frame.
    pub fn end_frame(&mut self) {
        let used: std::collections::HashSet<String> = self.used.drain(..).collect();
        self.cache.retain(|k, _| used.contains(k));
    }
}
