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
    /// Left edge and width of each frame's column; the last entry is the target's.
    cols: Vec<(f64, f64)>,
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

/// Which number is which, said once in the target's column, where no numbers stand; a
/// separate label column would push the strip past a double-column width.
const SRC_LABEL: &str = "← p(source)";
const TGT_LABEL: &str = "← p(target)";

impl Layout {
    fn new(s: &Strip) -> Self {
        let caption_size = pt(style::LABEL_PT);
        let p_src_size = pt(style::LABEL_PT);
        let p_tgt_size = pt(style::SMALL_PT);
        // A column is as wide as the frame or its caption, whichever is wider.
        let frame_w = s
            .frames
            .iter()
            .map(|f| measure(&f.caption, caption_size, false).0)
            .fold(BOX, f64::max);
        let target_w = BOX
            .max(measure("target", caption_size, false).0)
            .max(measure(SRC_LABEL, p_src_size, false).0)
            .max(measure(TGT_LABEL, p_tgt_size, false).0);
        let pitch = frame_w + SPACING;
        let mut cols: Vec<(f64, f64)> = (0..s.frames.len())
            .map(|k| (MARGIN + k as f64 * pitch, frame_w))
            .collect();
        let after_frames = MARGIN + s.frames.len() as f64 * pitch;
        let target_x = if s.frames.is_empty() {
            MARGIN
        } else {
            after_frames + TARGET_GAP - SPACING
        };
        cols.push((target_x, target_w));
        let sep_x = after_frames - SPACING + TARGET_GAP / 2.0;
        let w = target_x + target_w + MARGIN;

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
    c.title(&s.title, l.w / 2.0, l.title_y, l.title_size)?;

    let frames = s
        .frames
        .iter()
        .map(|f| (&f.image, f.caption.as_str(), Some(f)))
        .chain([(&s.target, "target", None)]);
    for ((img, caption, frame), &(x, col_w)) in frames.zip(&l.cols) {
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
        // Under a frame its two numbers; under the target, what those numbers are.
        let (src_text, tgt_text, h, x_text) = match frame {
            Some(f) => (
                fmt_p(f.source_confidence),
                fmt_p(f.target_confidence),
                HPos::Center,
                cx,
            ),
            None => (SRC_LABEL.to_string(), TGT_LABEL.to_string(), HPos::Left, x),
        };
        c.text(
            &src_text,
            x_text,
            l.p_src_y,
            TextStyleU::new(l.p_src_size)
                .color(DARK)
                .anchor(h, VPos::Top),
        )?;
        c.text(
            &tgt_text,
            x_text,
            l.p_tgt_y,
            TextStyleU::new(l.p_tgt_size)
                .color(MID)
                .anchor(h, VPos::Top),
        )?;
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
