//! Path strip (§1.9): the frames of one LST path, left to right, and the target set apart.

use image::RgbImage;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Canvas, TextStyleU, measure};
use super::style::{self, DARK, FRAME, LIGHT, MID, pt};
use super::{FigureError, StripFrame};

pub(crate) struct Strip {
    pub frames: Vec<StripFrame>,
    pub target: RgbImage,
    pub title: String,
}

/// Side of the square box each frame is drawn in: 3× a 32-pixel CIFAR image.
const BOX: f64 = 96.0;
const MARGIN: f64 = 12.0;
/// Space between neighbouring frames.
const SPACING: f64 = 8.0;
/// Extra space before the target, so it reads as a reference and not as the next step.
const TARGET_GAP: f64 = 28.0;

struct Layout {
    w: f64,
    h: f64,
    /// Left edge of each frame's column; the last entry is the target's.
    cols: Vec<f64>,
    pitch: f64,
    label_right: f64,
    sep_x: f64,
    title_y: f64,
    caption_y: f64,
    image_y: f64,
    p_src_y: f64,
    p_tgt_y: f64,
    title_size: f64,
    caption_size: f64,
    p_src_size: f64,
    p_tgt_size: f64,
}

const SRC_LABEL: &str = "p(source)";
const TGT_LABEL: &str = "p(target)";

impl Layout {
    fn new(s: &Strip) -> Self {
        let caption_size = pt(style::LABEL_PT);
        let p_src_size = pt(style::LABEL_PT);
        let p_tgt_size = pt(style::SMALL_PT);
        // A column is as wide as the frame or its caption, whichever is wider.
        let widest_caption = s
            .frames
            .iter()
            .map(|f| f.caption.as_str())
            .chain(["target"])
            .map(|c| measure(c, caption_size, false).0)
            .fold(BOX, f64::max);
        let pitch = widest_caption + SPACING;
        let label_w = measure(SRC_LABEL, p_src_size, false)
            .0
            .max(measure(TGT_LABEL, p_tgt_size, false).0);
        let label_right = MARGIN + label_w;
        let first = label_right + SPACING;
        let mut cols: Vec<f64> = (0..s.frames.len())
            .map(|k| first + k as f64 * pitch)
            .collect();
        let after_frames = first + s.frames.len() as f64 * pitch;
        let target_x = if s.frames.is_empty() {
            first
        } else {
            after_frames + TARGET_GAP - SPACING
        };
        cols.push(target_x);
        let sep_x = after_frames + (TARGET_GAP - 2.0 * SPACING) / 2.0;
        let w = target_x + pitch - SPACING + MARGIN;

        let title_size = style::fit_size(&s.title, style::TITLE_PT, w - 2.0 * MARGIN, true);
        let title_y = MARGIN;
        let caption_y = title_y + title_size + 8.0;
        let image_y = caption_y + caption_size;
        let p_src_y = image_y + BOX + 4.0;
        let p_tgt_y = p_src_y + p_src_size;
        let h = p_tgt_y + p_tgt_size + MARGIN - 4.0;
        Self {
            w,
            h,
            cols,
            pitch,
            label_right,
            sep_x,
            title_y,
            caption_y,
            image_y,
            p_src_y,
            p_tgt_y,
            title_size,
            caption_size,
            p_src_size,
            p_tgt_size,
        }
    }
}

pub(crate) fn size(s: &Strip) -> (u32, u32) {
    let l = Layout::new(s);
    (l.w.ceil() as u32, l.h.ceil() as u32)
}

pub(crate) fn validate(s: &Strip) -> Result<(), FigureError> {
    if s.frames.is_empty() {
        return Err(FigureError::InvalidData(
            "a path strip needs at least one frame".into(),
        ));
    }
    Ok(())
}

/// Confidence with two decimals; a non-finite value (a bug upstream, §0.2) shows as a dash
/// rather than "NaN".
pub(crate) fn fmt_p(v: f32) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "–".into()
    }
}

pub(crate) fn draw<DB: DrawingBackend>(c: &mut Canvas<DB>, s: &Strip) -> Result<(), FigureError> {
    let l = Layout::new(s);
    let col_w = l.pitch - SPACING;
    c.text(
        &s.title,
        l.w / 2.0,
        l.title_y,
        TextStyleU::new(l.title_size)
            .bold()
            .anchor(HPos::Center, VPos::Top),
    )?;

    // Row labels: which number is which, once, at the left.
    c.text(
        SRC_LABEL,
        l.label_right,
        l.p_src_y,
        TextStyleU::new(l.p_src_size)
            .color(DARK)
            .anchor(HPos::Right, VPos::Top),
    )?;
    c.text(
        TGT_LABEL,
        l.label_right,
        l.p_tgt_y,
        TextStyleU::new(l.p_tgt_size)
            .color(MID)
            .anchor(HPos::Right, VPos::Top),
    )?;

    let frames = s
        .frames
        .iter()
        .map(|f| (&f.image, f.caption.as_str(), Some(f)))
        .chain([(&s.target, "target", None)]);
    for ((img, caption, frame), &x) in frames.zip(&l.cols) {
        let cx = x + col_w / 2.0;
        c.text(
            caption,
            cx,
            l.caption_y,
            TextStyleU::new(l.caption_size)
                .color(DARK)
                .anchor(HPos::Center, VPos::Top),
        )?;
        // A hairline frame keeps images with white borders from bleeding into the page.
        c.image(img, cx - BOX / 2.0, l.image_y, BOX, Some((FRAME, 0.75)))?;
        if let Some(f) = frame {
            c.text(
                &fmt_p(f.source_confidence),
                cx,
                l.p_src_y,
                TextStyleU::new(l.p_src_size)
                    .color(DARK)
                    .anchor(HPos::Center, VPos::Top),
            )?;
            c.text(
                &fmt_p(f.target_confidence),
                cx,
                l.p_tgt_y,
                TextStyleU::new(l.p_tgt_size)
                    .color(MID)
                    .anchor(HPos::Center, VPos::Top),
            )?;
        }
    }
    // A light rule between the path and the reference target.
    c.line(
        (l.sep_x, l.caption_y),
        (l.sep_x, l.p_tgt_y + l.p_tgt_size),
        LIGHT.to_rgba(),
        1.0,
    )?;
    Ok(())
}
