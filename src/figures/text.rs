//! Text for the PNG backend, set with ab_glyph directly.
//!
//! plotters' ab_glyph text drawing drops each glyph's left side bearing and truncates pen
//! positions to whole pixels, so "p(target)" comes out as "p( target)". The PNG backend here
//! wraps plotters' bitmap backend and sets text itself: pen positions stay fractional, glyphs
//! keep their bearings and kerning. Sizes follow the SVG backend (em = size / 1.24) so a PNG
//! and an SVG of the same figure set text at the same size, and the vertical anchors follow the
//! SVG backend's `dy` values so both put text in the same place.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
    FontStyle as BackendFontStyle, FontTransform,
};

/// plotters' text size is a line height; its SVG backend writes `font-size = size / 1.24`.
pub(crate) const SIZE_PER_EM: f64 = 1.24;

/// Baseline below the anchor for top-anchored text, in em (the SVG backend's `dy="0.76em"`).
const TOP_BASELINE: f32 = 0.76;
/// Baseline below the anchor for centred text: half the cap height of DejaVu Sans (0.73 em),
/// so labels centre on their ticks.
const CENTER_BASELINE: f32 = 0.365;
/// Baseline above the anchor for bottom-anchored text: the descent, so descenders end there.
const BOTTOM_BASELINE: f32 = -0.24;

struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

static FONTS: OnceLock<Result<Fonts, String>> = OnceLock::new();

fn fonts() -> Result<&'static Fonts, String> {
    FONTS
        .get_or_init(|| {
            let load = |bytes: &'static [u8], what: &str| {
                FontRef::try_from_slice(bytes).map_err(|e| format!("DejaVu Sans {what}: {e}"))
            };
            Ok(Fonts {
                regular: load(dejavu::sans::regular(), "regular")?,
                bold: load(dejavu::sans::bold(), "bold")?,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Font loading failures, as plotters' font error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TextError(String);

fn pick(bold: bool) -> Result<&'static FontRef<'static>, String> {
    let f = fonts()?;
    Ok(if bold { &f.bold } else { &f.regular })
}

/// The ab_glyph scale whose em is `em` pixels (ab_glyph scales by ascent − descent).
fn scale_for_em(font: &FontRef<'static>, em: f32) -> PxScale {
    let upem = font.units_per_em().unwrap_or(2048.0);
    PxScale::from(em * font.height_unscaled() / upem)
}

/// Glyphs of `text` with their pen x positions, and the advance width, at `scale`.
fn layout(font: &FontRef<'static>, scale: PxScale, text: &str) -> (Vec<(GlyphId, f32)>, f32) {
    let sf = font.as_scaled(scale);
    let mut x = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    let mut out = Vec::with_capacity(text.len());
    for ch in text.chars() {
        let id = sf.glyph_id(ch);
        if let Some(p) = prev {
            x += sf.kern(p, id);
        }
        out.push((id, x));
        x += sf.h_advance(id);
        prev = Some(id);
    }
    (out, x)
}

/// Width of `text` at plotters text size `size` (same unit as `size`).
pub(crate) fn width(text: &str, size: f64, bold: bool) -> Option<f64> {
    let font = pick(bold).ok()?;
    let em = (size / SIZE_PER_EM) as f32;
    Some(layout(font, scale_for_em(font, em), text).1 as f64)
}

/// plotters' bitmap backend with text set by `draw_text` below; everything else is passed on.
pub(crate) struct Bitmap<'a> {
    inner: BitMapBackend<'a>,
}

impl<'a> Bitmap<'a> {
    pub fn new(inner: BitMapBackend<'a>) -> Self {
        Self { inner }
    }
}

type Err<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

fn font_error<E>(msg: String) -> DrawingErrorKind<E>
where
    E: std::error::Error + Send + Sync,
{
    DrawingErrorKind::FontError(Box::new(TextError(msg)))
}

impl<'a> DrawingBackend for Bitmap<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Err<'a>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Err<'a>> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Err<'a>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Err<'a>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Err<'a>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Err<'a>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Err<'a>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Err<'a>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Err<'a>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), Err<'a>> {
        let bold = matches!(style.style(), BackendFontStyle::Bold);
        let w = width(text, style.size(), bold).ok_or_else(|| font_error(text_font_msg()))?;
        Ok((w.ceil() as u32, (style.size() / SIZE_PER_EM).ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), Err<'a>> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let font = pick(matches!(style.style(), BackendFontStyle::Bold)).map_err(font_error)?;
        let em = (style.size() / SIZE_PER_EM) as f32;
        let scale = scale_for_em(font, em);
        let (glyphs, advance) = layout(font, scale, text);
        let anchor = style.anchor();
        let x0 = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -advance / 2.0,
            HPos::Right => -advance,
        };
        let baseline = em
            * match anchor.v_pos {
                VPos::Top => TOP_BASELINE,
                VPos::Center => CENTER_BASELINE,
                VPos::Bottom => BOTTOM_BASELINE,
            };
        let trans = style.transform();
        let (w, h) = self.inner.get_size();
        for (id, x) in glyphs {
            let glyph = id.with_scale_and_position(scale, point(x0 + x, baseline));
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue; // spaces and other blank glyphs
            };
            let bounds = outlined.px_bounds();
            let mut pixels = Vec::new();
            outlined.draw(|gx, gy, coverage| {
                if coverage > 0.0 {
                    pixels.push((
                        bounds.min.x as i32 + gx as i32,
                        bounds.min.y as i32 + gy as i32,
                        coverage.min(1.0),
                    ));
                }
            });
            for (lx, ly, coverage) in pixels {
                // Local coordinates rotate about the anchor, as in the SVG backend.
                let (rx, ry) = match trans {
                    FontTransform::Rotate90 => (-ly, lx),
                    FontTransform::Rotate180 => (-lx, -ly),
                    FontTransform::Rotate270 => (ly, -lx),
                    _ => (lx, ly),
                };
                let (px, py) = (pos.0 + rx, pos.1 + ry);
                if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                    self.inner.draw_pixel(
                        (px, py),
                        BackendColor {
                            alpha: color.alpha * coverage as f64,
                            rgb: color.rgb,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }
}

fn text_font_msg() -> String {
    match fonts() {
        Err(e) => e,
        Ok(_) => "font unavailable".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_grow_with_text_and_size() {
        let a = width("p(target)", 20.0, false).unwrap_or(0.0);
        let b = width("p(target) 0.97", 20.0, false).unwrap_or(0.0);
        let c = width("p(target)", 40.0, false).unwrap_or(0.0);
        assert!(a > 0.0 && b > a);
        assert!((c / a - 2.0).abs() < 1e-3);
        assert!(width("p(target)", 20.0, true).unwrap_or(0.0) > a);
    }
}
