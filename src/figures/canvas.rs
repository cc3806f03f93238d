//! One drawing surface over both plotters backends.
//!
//! Every figure is drawn once, by code generic over `DB: DrawingBackend`, in *units*: the
//! figure's base size is its size in units, and a PNG at scale s is drawn with every length
//! multiplied by s (plotters has no global transform, so the scale has to travel with the
//! canvas). SVG is drawn at scale 1.
//!
//! Images are the one thing the two backends cannot share: plotters' SVG backend would draw a
//! bitmap one `<rect>` per pixel. In SVG mode the canvas therefore writes a unique marker text
//! where the image goes and later swaps that `<text>` element for an `<image>` with the PNG as a
//! base64 data URI; doing the swap in place keeps the z-order of the drawing.

use std::sync::OnceLock;

use image::RgbImage;
use plotters::coord::Shift;
use plotters::element::BitMapElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, FontTransform, register_font};

use super::FigureError;
use super::raster;
use super::text::SIZE_PER_EM;

/// The family every text is set in; registered from embedded DejaVu Sans bytes so that no
/// system font or fontconfig is needed (CI machines have neither). SVG viewers render it with
/// their own sans-serif.
pub(crate) const FAMILY: &str = "sans-serif";

static FONT: OnceLock<Result<(), String>> = OnceLock::new();

/// Register DejaVu Sans (regular and bold) with plotters, once per process. The PNG backend
/// sets text itself (`text.rs`), but plotters still measures text through this registry when
/// it lays out charts on the SVG backend.
pub(crate) fn ensure_font() -> Result<(), FigureError> {
    FONT.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "DejaVu Sans (regular) is not a valid font".to_string())?;
        register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold())
            .map_err(|_| "DejaVu Sans (bold) is not a valid font".to_string())?;
        Ok(())
    })
    .clone()
    .map_err(FigureError::Font)
}

/// Text size in units for `points` when a figure `width_units` wide is printed `print_in` inches
/// wide. This is how figures guarantee readable text at paper column width.
pub(crate) fn text_size(points: f64, width_units: f64, print_in: f64) -> f64 {
    points * width_units / (print_in * 72.0) * SIZE_PER_EM
}

/// Width and height (one em) of `text` in units at text size `size`, as the PNG backend sets
/// it. Falls back to a generous estimate if the font cannot be used, so layout never fails;
/// drawing reports the font error itself.
pub(crate) fn measure(text: &str, size: f64, bold: bool) -> (f64, f64) {
    let w =
        super::text::width(text, size, bold).unwrap_or(text.chars().count() as f64 * 0.62 * size);
    (w, size / SIZE_PER_EM)
}

/// How a text is set.
#[derive(Clone, Copy)]
pub(crate) struct TextStyleU {
    pub size: f64,
    pub bold: bool,
    pub color: RGBColor,
    pub h: HPos,
    pub v: VPos,
    /// Rotated 90° counter-clockwise (reads bottom to top), for y-axis labels.
    pub vertical: bool,
}

impl TextStyleU {
    pub fn new(size: f64) -> Self {
        Self {
            size,
            bold: false,
            color: BLACK,
            h: HPos::Left,
            v: VPos::Top,
            vertical: false,
        }
    }
    pub fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
    pub fn color(mut self, c: RGBColor) -> Self {
        self.color = c;
        self
    }
    pub fn anchor(mut self, h: HPos, v: VPos) -> Self {
        self.h = h;
        self.v = v;
        self
    }
    pub fn vertical(mut self) -> Self {
        self.vertical = true;
        self
    }
}

/// An image waiting to replace its marker in the SVG text.
pub(crate) struct EmbeddedImage {
    marker: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    png: Vec<u8>,
    pixelated: bool,
}

/// Where an image ended up, in units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Placed {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// Pixel density (pixels per unit) of rasters embedded in SVG, e.g. the hull fill: twice the
/// base size keeps the gradient smooth when the SVG is zoomed without bloating the file.
const SVG_RASTER_DENSITY: f64 = 2.0;

pub(crate) struct Canvas<'a, DB: DrawingBackend> {
    area: DrawingArea<DB, Shift>,
    scale: f64,
    /// `Some` in SVG mode: images are collected here and swapped in after drawing.
    svg_images: Option<&'a mut Vec<EmbeddedImage>>,
    /// Canvas size in pixels, for clipping blits (plotters' bitmap blit mis-clips at the
    /// right and bottom edges, so nothing may reach past them).
    size_px: (i32, i32),
}

pub(crate) fn draw_err<E: std::error::Error + Send + Sync>(
    e: DrawingAreaErrorKind<E>,
) -> FigureError {
    FigureError::Draw(e.to_string())
}

impl<'a, DB: DrawingBackend> Canvas<'a, DB> {
    pub fn new(
        area: DrawingArea<DB, Shift>,
        scale: f64,
        svg_images: Option<&'a mut Vec<EmbeddedImage>>,
    ) -> Self {
        let (w, h) = area.dim_in_pixel();
        Self {
            area,
            scale,
            svg_images,
            size_px: (w as i32, h as i32),
        }
    }

    /// A length in units as whole pixels.
    pub fn px(&self, v: f64) -> i32 {
        (v * self.scale).round() as i32
    }

    /// A stroke width in pixels; never 0, which plotters would draw as nothing.
    pub fn stroke(&self, width: f64) -> u32 {
        ((width * self.scale).round() as u32).max(1)
    }

    fn pt(&self, x: f64, y: f64) -> (i32, i32) {
        (self.px(x), self.px(y))
    }

    pub fn font(&self, size: f64, bold: bool) -> FontDesc<'static> {
        let style = if bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        FontDesc::new(FontFamily::Name(FAMILY), size * self.scale, style)
    }

    /// A plotters text style at the canvas scale, for chart labels.
    pub fn text_style(&self, size: f64) -> TextStyle<'static> {
        TextStyle::from(self.font(size, false)).color(&BLACK)
    }

    /// The area of the rectangle (x0, y0)–(x1, y1) in units, for plotters charts.
    pub fn sub_area(&self, x0: f64, y0: f64, x1: f64, y1: f64) -> DrawingArea<DB, Shift> {
        let (a, b) = self.pt(x0, y0);
        let (c, d) = self.pt(x1, y1);
        self.area
            .clone()
            .shrink((a, b), ((c - a).max(1) as u32, (d - b).max(1) as u32))
    }

    pub fn fill(&self, color: RGBColor) -> Result<(), FigureError> {
        self.area.fill(&color).map_err(draw_err)
    }

    /// A figure title: bold, centred on `x`, hanging from `top`.
    pub fn title(&self, s: &str, x: f64, top: f64, size: f64) -> Result<(), FigureError> {
        self.text(
            s,
            x,
            top,
            TextStyleU::new(size).bold().anchor(HPos::Center, VPos::Top),
        )
    }

    pub fn text(&self, s: &str, x: f64, y: f64, st: TextStyleU) -> Result<(), FigureError> {
        if s.is_empty() {
            return Ok(());
        }
        let mut style = TextStyle::from(self.font(st.size, st.bold))
            .color(&st.color)
            .pos(Pos::new(st.h, st.v));
        if st.vertical {
            style = style.transform(FontTransform::Rotate270);
        }
        self.area
            .draw_text(s, &style, self.pt(x, y))
            .map_err(draw_err)
    }

    pub fn polyline(
        &self,
        pts: &[(f64, f64)],
        color: RGBAColor,
        width: f64,
    ) -> Result<(), FigureError> {
        let style = ShapeStyle {
            color,
            filled: false,
            stroke_width: self.stroke(width),
        };
        let path: Vec<(i32, i32)> = pts.iter().map(|&(x, y)| self.pt(x, y)).collect();
        self.area
            .draw(&PathElement::new(path, style))
            .map_err(draw_err)
    }

    pub fn line(
        &self,
        a: (f64, f64),
        b: (f64, f64),
        color: RGBAColor,
        width: f64,
    ) -> Result<(), FigureError> {
        self.polyline(&[a, b], color, width)
    }

    /// Rectangle with corners (x0, y0) and (x1, y1).
    pub fn rect(
        &self,
        [x0, y0, x1, y1]: [f64; 4],
        color: RGBAColor,
        filled: bool,
        width: f64,
    ) -> Result<(), FigureError> {
        let style = ShapeStyle {
            color,
            filled,
            stroke_width: self.stroke(width),
        };
        self.area
            .draw(&Rectangle::new([self.pt(x0, y0), self.pt(x1, y1)], style))
            .map_err(draw_err)
    }

    pub fn circle(
        &self,
        x: f64,
        y: f64,
        r: f64,
        color: RGBAColor,
        filled: bool,
        width: f64,
    ) -> Result<(), FigureError> {
        let style = ShapeStyle {
            color,
            filled,
            stroke_width: self.stroke(width),
        };
        let r_px = ((r * self.scale).round() as u32).max(1);
        self.area
            .draw(&Circle::new(self.pt(x, y), r_px, style))
            .map_err(draw_err)
    }

    /// Draw `img` centred in the square box of side `side` at (x, y), pixel-exact.
    ///
    /// Upscaling is nearest neighbour. When the box holds at least twice the image, the factor
    /// is snapped down to a whole number so every source pixel becomes an equal k×k block (a
    /// 32×32 CIFAR image never gets uneven pixel widths); between 1× and 2× the box is filled
    /// with an uneven nearest-neighbour map (invisible at that size); larger images are
    /// area-averaged down. `border` (colour, width in units) frames the image from outside: it
    /// is a filled rectangle drawn first, so it can never cover an image pixel. Returns where
    /// the image landed.
    pub fn image(
        &mut self,
        img: &RgbImage,
        x: f64,
        y: f64,
        side: f64,
        border: Option<(RGBColor, f64)>,
    ) -> Result<Placed, FigureError> {
        let (iw, ih) = img.dimensions();
        if iw == 0 || ih == 0 {
            return Ok(Placed {
                x,
                y,
                w: 0.0,
                h: 0.0,
            });
        }
        let svg = self.svg_images.is_some();
        // SVG is laid out at scale 1; the embedded image keeps its native pixels.
        let scale = if svg { 1.0 } else { self.scale };
        let box_px = (side * scale).floor().max(1.0) as u32;
        let (dw, dh) = raster::fit_size(iw, ih, box_px);
        let ox = (x * scale).round() as i32 + ((box_px - dw) / 2) as i32;
        let oy = (y * scale).round() as i32 + ((box_px - dh) / 2) as i32;
        let placed = Placed {
            x: ox as f64 / scale,
            y: oy as f64 / scale,
            w: dw as f64 / scale,
            h: dh as f64 / scale,
        };
        if let Some((colour, width)) = border {
            // Area coordinates are backend pixels in both modes (SVG runs at scale 1).
            let b = ((width * scale).round() as i32).max(1);
            self.area
                .draw(&Rectangle::new(
                    [(ox - b, oy - b), (ox + dw as i32 + b, oy + dh as i32 + b)],
                    colour.filled(),
                ))
                .map_err(draw_err)?;
        }
        if let Some(images) = self.svg_images.as_deref_mut() {
            // Upscaled by a whole factor, the blocks are baked in: renderers that ignore
            // `image-rendering` (librsvg, some PDF converters) would otherwise blur them.
            let png = if dw >= 2 * iw && dw % iw == 0 {
                raster::encode_png_rgb(&raster::resize_for_display(img, dw, dh))?
            } else {
                raster::encode_png_rgb(img)?
            };
            let marker = format!("BLINDSPOTIMAGE{:06}X", images.len());
            images.push(EmbeddedImage {
                marker: marker.clone(),
                x: placed.x,
                y: placed.y,
                w: placed.w,
                h: placed.h,
                png,
                pixelated: dw >= iw,
            });
            self.marker(&marker, placed.x, placed.y)
        } else {
            let resized = raster::resize_for_display(img, dw, dh);
            self.blit_rgb(ox, oy, dw, dh, resized.as_raw())?;
            Ok(())
        }?;
        Ok(placed)
    }

    /// Fill the rectangle (x, y, w, h) in units with colours from `f`, called with unit
    /// coordinates of each pixel centre; `None` leaves the pixel untouched (transparent in SVG).
    /// PNG evaluates `f` per output pixel, SVG embeds a raster at `SVG_RASTER_DENSITY`.
    pub fn raster<F>(&mut self, x: f64, y: f64, w: f64, h: f64, f: F) -> Result<(), FigureError>
    where
        F: Fn(f64, f64) -> Option<[u8; 3]>,
    {
        if let Some(images) = self.svg_images.as_deref_mut() {
            let d = SVG_RASTER_DENSITY;
            let rw = (w * d).ceil().max(1.0) as u32;
            let rh = (h * d).ceil().max(1.0) as u32;
            let mut rgba = image::RgbaImage::new(rw, rh);
            for (px, py, p) in rgba.enumerate_pixels_mut() {
                let ux = x + (px as f64 + 0.5) / d;
                let uy = y + (py as f64 + 0.5) / d;
                if let Some([r, g, b]) = f(ux, uy) {
                    *p = image::Rgba([r, g, b, 255]);
                }
            }
            let png = raster::encode_png_rgba(&rgba)?;
            let marker = format!("BLINDSPOTIMAGE{:06}X", images.len());
            images.push(EmbeddedImage {
                marker: marker.clone(),
                x,
                y,
                w: rw as f64 / d,
                h: rh as f64 / d,
                png,
                pixelated: false,
            });
            return self.marker(&marker, x, y);
        }
        let s = self.scale;
        let x0 = ((x * s).floor() as i32).max(0);
        let y0 = ((y * s).floor() as i32).max(0);
        let x1 = (((x + w) * s).ceil() as i32).min(self.size_px.0);
        let y1 = (((y + h) * s).ceil() as i32).min(self.size_px.1);
        let mut run: Vec<u8> = Vec::new();
        for py in y0..y1 {
            let uy = (py as f64 + 0.5) / s;
            let mut start: Option<i32> = None;
            run.clear();
            // One blit per horizontal run of covered pixels: the fill is convex per row in
            // practice, so this is one or two blits a row.
            for px in x0..=x1 {
                let c = if px < x1 {
                    f((px as f64 + 0.5) / s, uy)
                } else {
                    None
                };
                match (c, start) {
                    (Some(rgb), None) => {
                        start = Some(px);
                        run.extend_from_slice(&rgb);
                    }
                    (Some(rgb), Some(_)) => run.extend_from_slice(&rgb),
                    (None, Some(sx)) => {
                        let len = (px - sx) as u32;
                        self.blit_rgb(sx, py, len, 1, &run)?;
                        run.clear();
                        start = None;
                    }
                    (None, None) => {}
                }
            }
        }
        Ok(())
    }

    /// Copy an RGB buffer to pixel position (x, y), clipped to the canvas.
    fn blit_rgb(&self, x: i32, y: i32, w: u32, h: u32, buf: &[u8]) -> Result<(), FigureError> {
        let (cw, ch) = self.size_px;
        let cx0 = x.max(0);
        let cy0 = y.max(0);
        let cx1 = (x + w as i32).min(cw);
        let cy1 = (y + h as i32).min(ch);
        if cx1 <= cx0 || cy1 <= cy0 {
            return Ok(());
        }
        let (nw, nh) = ((cx1 - cx0) as u32, (cy1 - cy0) as u32);
        let owned = if (nw, nh) == (w, h) {
            buf.to_vec()
        } else {
            let mut out = Vec::with_capacity((nw * nh * 3) as usize);
            for row in (cy0 - y)..(cy1 - y) {
                let start = ((row as u32 * w + (cx0 - x) as u32) * 3) as usize;
                out.extend_from_slice(&buf[start..start + (nw * 3) as usize]);
            }
            out
        };
        let element =
            BitMapElement::<(i32, i32)>::with_owned_buffer((cx0, cy0), (nw, nh), owned)
                .ok_or_else(|| FigureError::Draw("image buffer smaller than its size".into()))?;
        self.area.draw(&element).map_err(draw_err)
    }

    fn marker(&self, marker: &str, x: f64, y: f64) -> Result<(), FigureError> {
        self.text(marker, x, y, TextStyleU::new(10.0))
    }

    pub fn present(&self) -> Result<(), FigureError> {
        self.area.present().map_err(draw_err)
    }
}

/// Swap each image marker's `<text>` element for its `<image>`.
pub(crate) fn splice_svg_images(
    mut svg: String,
    images: &[EmbeddedImage],
) -> Result<String, FigureError> {
    if !images.is_empty() && !svg.contains("xmlns:xlink") {
        // xlink:href rather than SVG 2's plain href: every renderer reads it, old Inkscape and
        // librsvg included, and writing both would store each image twice.
        svg = svg.replacen(
            "xmlns=\"http://www.w3.org/2000/svg\"",
            "xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\"",
            1,
        );
    }
    for im in images {
        // plotters writes `<text …>\nMARKER\n</text>\n`; take the whole element.
        let lost = || FigureError::Draw(format!("SVG image marker {} lost", im.marker));
        let at = svg.find(&im.marker).ok_or_else(lost)?;
        let start = svg[..at].rfind("<text").ok_or_else(lost)?;
        let end = at + svg[at..].find("</text>").ok_or_else(lost)? + "</text>".len();
        let data = format!("data:image/png;base64,{}", raster::base64(&im.png));
        let rendering = if im.pixelated {
            // Both spellings: `pixelated` for browsers, `optimizeSpeed` for older renderers.
            " image-rendering=\"optimizeSpeed\" style=\"image-rendering:pixelated\""
        } else {
            ""
        };
        let element = format!(
            "<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"none\"{} xlink:href=\"{}\"/>",
            fmt_num(im.x),
            fmt_num(im.y),
            fmt_num(im.w),
            fmt_num(im.h),
            rendering,
            data
        );
        svg.replace_range(start..end, &element);
    }
    Ok(svg)
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
