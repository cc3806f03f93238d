//! Paper-ready figures (PNG and SVG) from plain data: the views of §1.9 of ALGORITHMS.md.
//!
//! Each constructor takes plain data and returns a [`Figure`], which renders to PNG (at any
//! scale) or SVG from the same drawing code: every figure is drawn by one function generic over
//! the plotters backend (see `canvas`).
//!
//! Sizing: figures are laid out in *units* at 144 units per inch, i.e. 2 units per point.
//! A PNG at scale 1 is one pixel per unit; an SVG is one px per unit. Printed at its natural
//! width (`size().0 / 144` inches: 3.3 in for the single-column plots, at most about 7 in for
//! the strip, the grid and the width plot) every text is at its design size: titles 10 pt,
//! labels and ticks 9–9.5 pt, secondary text (p(target) under strip frames, legends, notes)
//! 8.5 pt; a title too long for the width shrinks, down to 8 pt. Scale PNGs by 2–4 for print.
//!
//! Text is set in DejaVu Sans, embedded through the `dejavu` crate (no system fonts or
//! fontconfig needed). PNG text is set with ab_glyph by `text.rs`; SVG text is written as
//! `<text font-family="sans-serif">`, laid out with the same font's metrics.
//!
//! Images (frames, thumbnails) are drawn pixel-exact: nearest-neighbour upscaling by a whole
//! factor whenever the box holds at least twice the image. SVG embeds each image as a PNG data
//! URI with that whole-factor upscaling baked in (renderers such as librsvg ignore
//! `image-rendering: pixelated`, which is set as well).

mod canvas;
mod colormap;
mod grid;
mod hull;
mod lines;
mod margins;
mod matrix;
mod raster;
mod semantic;
mod strip;
mod text;
mod width;

use std::path::{Path, PathBuf};

use image::{ExtendedColorType, RgbImage};
use plotters::prelude::*;

use canvas::{Canvas, EmbeddedImage, ensure_font, splice_svg_images};

pub use colormap::{Colormap, VIRIDIS_LEVELS, viridis};
pub use hull::lattice_field;
pub use semantic::{BoundTrace, RegionTraceData, SemanticCurveData, SemanticMapData};

/// Why a figure could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The data handed to a constructor is inconsistent (lengths that do not match, ...).
    #[error("invalid figure data: {0}")]
    InvalidData(String),
    /// PNG scale outside (0, 16] or not finite.
    #[error("invalid PNG scale {0}: expected a finite value in (0, 16]")]
    InvalidScale(f32),
    /// The embedded font could not be registered.
    #[error("figure font unavailable: {0}")]
    Font(String),
    /// plotters failed while drawing.
    #[error("drawing the figure failed: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("encoding the figure as PNG failed: {0}")]
    Encode(String),
    /// Writing the output file failed; names the file the caller asked for.
    #[error("cannot write figure to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One frame of a path strip.
#[derive(Clone, Debug)]
pub struct StripFrame {
    pub image: RgbImage,
    /// p(source class) of this frame.
    pub source_confidence: f32,
    /// p(target class) of this frame.
    pub target_confidence: f32,
    /// e.g. "source", "step 20", "x*".
    pub caption: String,
}

/// One iteration of an LST run, for the confidence-over-path plot.
#[derive(Clone, Copy, Debug)]
pub struct StepPoint {
    pub step: usize,
    pub source_confidence: f32,
    pub target_confidence: f32,
    /// L2 distance to the target, normalised (‖x − x_t‖₂ / √d).
    pub l2_normalized: f32,
    /// L∞ distance to the target.
    pub linf: f32,
    /// Whether the step was accepted.
    pub accepted: bool,
}

/// One triangle of §1.7, ready to plot (§1.9 "Triangular hull heatmap").
#[derive(Clone, Debug)]
pub struct HullFigureData {
    /// Lattice resolution: points (i, j) with i + j ≤ n.
    pub n: usize,
    /// conf_ij for i + j ≤ n, i-major then j: (0,0), (0,1), …, (0,n), (1,0), …, (n,0).
    pub confidences: Vec<f32>,
    /// Plotted position of x₁ (the source sits at (0, 0)).
    pub p1: [f32; 2],
    /// Plotted position of x₂.
    pub p2: [f32; 2],
    /// The geometry fell back to the right isosceles layout.
    pub degenerate: bool,
    /// Thumbnails of x_s, x₁, x₂.
    pub corners: [RgbImage; 3],
    /// Labels of the three corners.
    pub corner_labels: [String; 3],
    /// Confidence levels at which contour lines are drawn.
    pub contour_levels: Vec<f32>,
    pub title: String,
    /// The colour map of the fill and the colour bar.
    pub colormap: Colormap,
}

/// Path widths over a run (§1.5), for the path-width plot.
#[derive(Clone, Debug)]
pub struct WidthFigureData {
    /// Iteration of each logged measurement.
    pub logged_steps: Vec<usize>,
    /// The radii r_1..r_R (pixel-space L2).
    pub radii: Vec<f32>,
    /// `q05[log][k]`, k = 0..=R; k = 0 is the on-path confidence.
    pub q05: Vec<Vec<f32>>,
    /// `q95[log][k]`, as `q05`.
    pub q95: Vec<Vec<f32>>,
    /// Measurements that were skipped (drawn hatched).
    pub skipped: Vec<bool>,
    pub title: String,
}

/// Path widths of several models on one pair (§2.4), one row of q05/q95 heatmaps per model
/// (each row's `title` names its model), all on the colour scale p ∈ [0, 1].
#[derive(Clone, Debug)]
pub struct WidthCompareData {
    pub rows: Vec<WidthFigureData>,
    pub title: String,
}

/// A square matrix of fractions in [0, 1] (the NSPGD hit-rate matrix of §2.4), annotated;
/// `None` cells (no pair counted) are drawn empty and read "n/a".
#[derive(Clone, Debug)]
pub struct MatrixFigureData {
    /// Row (first index) and column labels.
    pub row_labels: Vec<String>,
    pub column_labels: Vec<String>,
    pub row_title: String,
    pub column_title: String,
    pub values: Vec<Vec<Option<f64>>>,
    /// Names the value (the colour bar's title), e.g. "hit rate".
    pub value_label: String,
    pub title: String,
}

/// One cell of the all-pairs grid.
#[derive(Clone, Debug)]
pub struct GridCell {
    pub image: RgbImage,
    /// p(class of the column's source) for this image.
    pub source_confidence: f32,
}

/// The all-pairs grid of the examples mode (§1.9).
#[derive(Clone, Debug)]
pub struct GridFigureData {
    pub k: usize,
    /// Class names of the k pool images.
    pub class_names: Vec<String>,
    /// `cells[i][j]`: row i is target i, column j is source j; `None` draws an empty cell.
    pub cells: Vec<Vec<Option<GridCell>>>,
    pub title: String,
    /// What the framed diagonal shows, for the note under the grid: the unmodified source in
    /// the LST all-pairs grid, the target itself in the reach examples grid.
    pub diagonal: &'static str,
}

/// One curve of the linear-interpolation profile (§1.8).
#[derive(Clone, Debug)]
pub struct ProfileCurve {
    pub label: String,
    pub t: Vec<f32>,
    pub confidence: Vec<f32>,
    /// Dashed (source → target) rather than solid (source → x*). The k-th solid and the k-th
    /// dashed curve share a colour, so list the pairs in the same order.
    pub dashed: bool,
}

enum Kind {
    Strip(strip::Strip),
    Confidence(lines::Confidence),
    Hull(HullFigureData),
    Width(WidthFigureData),
    WidthCompare(WidthCompareData),
    Matrix(MatrixFigureData),
    Grid(GridFigureData),
    Profile(lines::Profile),
    Margins(MarginPlotData),
    Flip(FlipFigureData),
    SemanticCurve(SemanticCurveData),
    SemanticMap(SemanticMapData),
    RegionTrace(RegionTraceData),
}

/// One model's margins in a margin distribution plot (§4.4).
#[derive(Clone, Debug)]
pub struct MarginSeries {
    /// Legend entry.
    pub name: String,
    /// [S][Ns] L2 margins.
    pub margins: Vec<Vec<f32>>,
    /// [S][Ns]: converged samples are drawn filled, the others hollow.
    pub converged: Vec<Vec<bool>>,
    /// Per subspace [Q1, median, Q3].
    pub quartiles: Vec<[f64; 3]>,
}

/// The margin distribution over DCT subspaces, low to high frequency, of one or more models
/// on the same samples (§4.4).
#[derive(Clone, Debug)]
pub struct MarginPlotData {
    pub title: String,
    /// Block start i0 of each subspace (the x slots, low to high).
    pub starts: Vec<usize>,
    /// The x-axis title between "Low" and "High".
    pub x_label: String,
    pub series: Vec<MarginSeries>,
    /// [S][Ns] horizontal jitter in [−0.5, 0.5) (cosmetic; the PLOT_JITTER stream).
    pub jitter: Vec<Vec<f32>>,
    pub log_scale: bool,
}

/// The flip illustration (§4.4): an image, its frequency flip, and log|DCT2| before and after.
#[derive(Clone, Debug)]
pub struct FlipFigureData {
    pub title: String,
    pub image: RgbImage,
    pub flipped: RgbImage,
    /// N: the spectra are N×N.
    pub size: usize,
    /// log10 |DCT2| averaged over channels, N×N row-major.
    pub spectrum: Vec<f32>,
    pub flipped_spectrum: Vec<f32>,
}

/// A figure ready to be written as PNG or SVG.
pub struct Figure {
    kind: Kind,
}

/// Path strip (§1.9): frames left to right, the target set apart at the right end, p(source)
/// and (smaller) p(target) under each frame. `title` should read
/// "source class → target class, model".
pub fn path_strip(frames: &[StripFrame], target: &RgbImage, title: &str) -> Figure {
    Figure {
        kind: Kind::Strip(strip::Strip {
            frames: frames.to_vec(),
            target: target.clone(),
            title: title.to_string(),
        }),
    }
}

/// Confidence-over-path plot: p(source), p(target) and the distances to the target against
/// the step; rejected steps are marked with red crosses.
pub fn confidence_plot(steps: &[StepPoint], title: &str) -> Figure {
    Figure {
        kind: Kind::Confidence(lines::Confidence {
            steps: steps.to_vec(),
            title: title.to_string(),
        }),
    }
}

/// Triangular hull heatmap in true geometry (§1.7, §1.9).
pub fn hull_heatmap(h: &HullFigureData) -> Figure {
    Figure {
        kind: Kind::Hull(h.clone()),
    }
}

/// Path-width heatmaps, q05 and q95 side by side (§1.5, §1.9).
pub fn width_plot(w: &WidthFigureData) -> Figure {
    Figure {
        kind: Kind::Width(w.clone()),
    }
}

/// Path-width heatmaps of several models on one pair, one row each, on a shared colour scale.
pub fn width_compare(w: &WidthCompareData) -> Figure {
    Figure {
        kind: Kind::WidthCompare(w.clone()),
    }
}

/// An annotated heatmap of fractions in [0, 1], such as the hit-rate matrix (§2.4).
pub fn fraction_matrix(m: &MatrixFigureData) -> Figure {
    Figure {
        kind: Kind::Matrix(m.clone()),
    }
}

/// K×K all-pairs grid (§1.9).
pub fn pairs_grid(g: &GridFigureData) -> Figure {
    Figure {
        kind: Kind::Grid(g.clone()),
    }
}

/// Linear-interpolation profile (§1.8): confidence against t, solid for source → x*,
/// dashed for source → target.
pub fn interpolation_profile(curves: &[ProfileCurve], title: &str) -> Figure {
    Figure {
        kind: Kind::Profile(lines::Profile {
            curves: curves.to_vec(),
            title: title.to_string(),
        }),
    }
}

/// Margin distribution over DCT subspaces (§4.4): per subspace and model the median, an IQR
/// box and jittered samples (hollow when not converged), models in distinct colours.
pub fn margin_plot(d: &MarginPlotData) -> Figure {
    Figure {
        kind: Kind::Margins(d.clone()),
    }
}

/// The flip illustration (§4.4).
pub fn flip_illustration(d: &FlipFigureData) -> Figure {
    Figure {
        kind: Kind::Flip(d.clone()),
    }
}

/// 1-D semantic map (§3.8): f against one parameter, the identity marked, the mean over images
/// bold when there are several, found intervals as bars.
pub fn semantic_curve(d: &SemanticCurveData) -> Figure {
    Figure {
        kind: Kind::SemanticCurve(d.clone()),
    }
}

/// 2-D semantic map (§3.8) on RdBu (blue high f, red low), with found boxes and the start.
pub fn semantic_map(d: &SemanticMapData) -> Figure {
    Figure {
        kind: Kind::SemanticMap(d.clone()),
    }
}

/// Region-growing bound traces a_t, b_t against iteration, one panel per parameter.
pub fn region_traces(d: &RegionTraceData) -> Figure {
    Figure {
        kind: Kind::RegionTrace(d.clone()),
    }
}

impl Figure {
    /// Base size in units: the PNG size at scale 1 and the SVG size in px.
    pub fn size(&self) -> (u32, u32) {
        match &self.kind {
            Kind::Strip(s) => strip::size(s),
            Kind::Confidence(_) => lines::CONFIDENCE_SIZE,
            Kind::Hull(h) => hull::size(h),
            Kind::Width(w) => width::size(w),
            Kind::WidthCompare(w) => width::compare_size(w),
            Kind::Matrix(m) => matrix::size(m),
            Kind::Grid(g) => grid::size(g),
            Kind::Profile(p) => lines::profile_size(p),
            Kind::Margins(_) => margins::MARGIN_PLOT_SIZE,
            Kind::Flip(f) => margins::flip_size(f),
            Kind::SemanticCurve(_) => semantic::curve_size(),
            Kind::SemanticMap(_) => semantic::map_size(),
            Kind::RegionTrace(d) => semantic::trace_size(d),
        }
    }

    /// Size of the PNG written at `scale`.
    pub fn png_size(&self, scale: f32) -> (u32, u32) {
        let (w, h) = self.size();
        let s = scale as f64;
        (
            ((w as f64 * s).round() as u32).max(1),
            ((h as f64 * s).round() as u32).max(1),
        )
    }

    /// For a hull heatmap: the PNG pixel position (x, y, fractional) at `scale` of a point in
    /// the plotted plane (the source at (0, 0), x₁ at `p1`, x₂ at `p2`). `None` for other
    /// figures. Lets callers and tests find lattice points in the picture.
    pub fn hull_plane_to_pixel(&self, point: [f32; 2], scale: f32) -> Option<(f64, f64)> {
        match &self.kind {
            Kind::Hull(h) => {
                let (x, y) = hull::Layout::new(h).to_units(point[0] as f64, point[1] as f64);
                Some((x * scale as f64, y * scale as f64))
            }
            _ => None,
        }
    }

    fn validate(&self) -> Result<(), FigureError> {
        match &self.kind {
            Kind::Strip(s) => strip::validate(s),
            Kind::Confidence(_) => Ok(()),
            Kind::Hull(h) => hull::validate(h),
            Kind::Width(w) => width::validate(w),
            Kind::WidthCompare(w) => width::validate_compare(w),
            Kind::Matrix(m) => matrix::validate(m),
            Kind::Grid(g) => grid::validate(g),
            Kind::Profile(p) => lines::validate_profile(p),
            Kind::Margins(m) => margins::validate_margin_plot(m),
            Kind::Flip(f) => margins::validate_flip(f),
            Kind::SemanticCurve(d) => semantic::validate_curve(d),
            Kind::SemanticMap(d) => semantic::validate_map(d),
            Kind::RegionTrace(d) => semantic::validate_trace(d),
        }
    }

    fn draw<DB: DrawingBackend>(&self, c: &mut Canvas<DB>) -> Result<(), FigureError> {
        c.fill(WHITE)?;
        match &self.kind {
            Kind::Strip(s) => strip::draw(c, s),
            Kind::Confidence(p) => lines::draw_confidence(c, p),
            Kind::Hull(h) => hull::draw(c, h),
            Kind::Width(w) => width::draw(c, w),
            Kind::WidthCompare(w) => width::draw_compare(c, w),
            Kind::Matrix(m) => matrix::draw(c, m),
            Kind::Grid(g) => grid::draw(c, g),
            Kind::Profile(p) => lines::draw_profile(c, p),
            Kind::Margins(m) => margins::draw_margin_plot(c, m),
            Kind::Flip(f) => margins::draw_flip(c, f),
            Kind::SemanticCurve(d) => semantic::draw_curve(c, d),
            Kind::SemanticMap(d) => semantic::draw_map(c, d),
            Kind::RegionTrace(d) => semantic::draw_trace(c, d),
        }?;
        c.present()
    }

    /// The figure as PNG bytes; `scale` 1.0 is the base size, 2–4 suits print.
    pub fn png_bytes(&self, scale: f32) -> Result<Vec<u8>, FigureError> {
        if !scale.is_finite() || scale <= 0.0 || scale > 16.0 {
            return Err(FigureError::InvalidScale(scale));
        }
        ensure_font()?;
        self.validate()?;
        let (w, h) = self.png_size(scale);
        let mut buf = vec![255u8; w as usize * h as usize * 3];
        {
            let backend = text::Bitmap::new(BitMapBackend::with_buffer(&mut buf, (w, h)));
            let area = backend.into_drawing_area();
            let mut c = Canvas::new(area, scale as f64, None);
            self.draw(&mut c)?;
        }
        raster::encode_png(&buf, w, h, ExtendedColorType::Rgb8)
    }

    /// The figure as an SVG document.
    pub fn svg_string(&self) -> Result<String, FigureError> {
        ensure_font()?;
        self.validate()?;
        let size = self.size();
        let mut svg = String::new();
        let mut images: Vec<EmbeddedImage> = Vec::new();
        {
            let area = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            let mut c = Canvas::new(area, 1.0, Some(&mut images));
            self.draw(&mut c)?;
        }
        splice_svg_images(svg, &images)
    }

    /// Write the PNG at `scale` to `path`, atomically.
    pub fn write_png(&self, path: &Path, scale: f32) -> Result<(), FigureError> {
        write_atomic(path, &self.png_bytes(scale)?)
    }

    /// Write the SVG to `path`, atomically.
    pub fn write_svg(&self, path: &Path) -> Result<(), FigureError> {
        write_atomic(path, self.svg_string()?.as_bytes())
    }
}

/// Writes `bytes` to `path` atomically (see [`crate::atomic`]): a reader never sees a
/// half-written figure and a failed write leaves the old file intact.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FigureError> {
    crate::atomic::write(path, bytes).map_err(|source| FigureError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Shared drawing helpers.
pub(crate) mod style {
    use plotters::style::RGBColor;

    /// 2 units per point (144 units per inch).
    pub const UNITS_PER_PT: f64 = 2.0;

    /// Text size (plotters line height) in units for a text of `points` points.
    pub fn pt(points: f64) -> f64 {
        super::canvas::text_size(points, UNITS_PER_PT * 72.0, 1.0)
    }

    pub const TITLE_PT: f64 = 10.0;
    pub const LABEL_PT: f64 = 9.5;
    pub const TICK_PT: f64 = 9.0;
    pub const SMALL_PT: f64 = 8.5;

    pub const DARK: RGBColor = RGBColor(34, 34, 34);
    pub const MID: RGBColor = RGBColor(90, 90, 90);
    pub const LIGHT: RGBColor = RGBColor(200, 200, 200);
    pub const FRAME: RGBColor = RGBColor(150, 150, 150);
    pub const ALERT: RGBColor = RGBColor(178, 24, 43);

    /// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
    pub const PALETTE: [RGBColor; 7] = [
        RGBColor(0, 114, 178),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(213, 94, 0),
        RGBColor(120, 120, 120),
    ];

    /// Rejected steps: red, distinct from every palette colour.
    pub const REJECT: RGBColor = RGBColor(214, 39, 40);

    pub fn rgb(c: [u8; 3]) -> RGBColor {
        RGBColor(c[0], c[1], c[2])
    }

    /// Shrink a title's size until it fits `width` units, down to 8 pt.
    pub fn fit_size(text: &str, points: f64, width: f64, bold: bool) -> f64 {
        let mut p = points;
        while p > 8.0 && super::canvas::measure(text, pt(p), bold).0 > width {
            p -= 0.5;
        }
        pt(p)
    }

    /// Compact number for axis ticks: 0.5, 1, 1.5, 20.
    pub fn num(v: f64) -> String {
        let s = format!("{v:.2}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.into() }
    }
}
