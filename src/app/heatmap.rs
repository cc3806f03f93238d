//! The hull heatmap on the GPU: our WGSL shader (`shaders/hull_heatmap.wgsl`) drawn inside
//! egui through an egui-wgpu paint callback (the pattern of egui's `custom3d_wgpu` demo), and
//! the same pipeline rendering offscreen for high-resolution export.
//!
//! The confidence lattice goes to the GPU as a storage buffer and is interpolated per fragment,
//! so any resolution (n = 10, 20, 40, …) draws at the full resolution of the screen.

use std::num::NonZeroU64;

use eframe::egui_wgpu::{self, wgpu};
use wgpu::util::DeviceExt;

use crate::figures::Colormap;

/// Contour levels the shader takes at most.
pub const MAX_CONTOURS: usize = 8;

const SHADER: &str = include_str!("../../shaders/hull_heatmap.wgsl");

/// The shader's uniform block (layout of `Params` in the WGSL).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    p0: [f32; 2],
    p1: [f32; 2],
    p2: [f32; 2],
    n: u32,
    contour_count: u32,
    linear_output: u32,
    pad: [u32; 3],
    reserved: [f32; 4],
    contours: [[f32; 4]; 2],
}

/// One heatmap to draw: the lattice, where its three corners go, and how it is coloured.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatmapFrame {
    /// Lattice resolution n.
    pub n: usize,
    /// conf at (i, j), i-major then j: (n+1)(n+2)/2 values.
    pub confidences: Vec<f32>,
    /// x_s, x1, x2 in normalised device coordinates of the target area (−1..1, y up).
    pub corners_ndc: [[f32; 2]; 3],
    pub contours: Vec<f32>,
    pub colormap: Colormap,
}

impl HeatmapFrame {
    fn params(&self, linear_output: bool) -> Params {
        let mut contours = [[0f32; 4]; 2];
        let count = self.contours.len().min(MAX_CONTOURS);
        for (k, level) in self.contours.iter().take(count).enumerate() {
            contours[k / 4][k % 4] = *level;
        }
        Params {
            p0: self.corners_ndc[0],
            p1: self.corners_ndc[1],
            p2: self.corners_ndc[2],
            n: self.n as u32,
            contour_count: count as u32,
            linear_output: u32::from(linear_output),
            pad: [0; 3],
            reserved: [0.0; 4],
            contours,
        }
    }

    fn lut(&self) -> Vec<[f32; 4]> {
        self.colormap
            .levels()
            .iter()
            .map(|c| {
                [
                    f32::from(c[0]) / 255.0,
                    f32::from(c[1]) / 255.0,
                    f32::from(c[2]) / 255.0,
                    1.0,
                ]
            })
            .collect()
    }

    /// Whether the data can be drawn (a lattice of the right length).
    pub fn is_valid(&self) -> bool {
        self.n >= 1 && self.confidences.len() == (self.n + 1) * (self.n + 2) / 2
    }
}

/// The pipeline and buffers for one render-target format.
pub struct HeatmapGpu {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    params: wgpu::Buffer,
    lut: wgpu::Buffer,
    confidences: wgpu::Buffer,
    /// Floats the confidence buffer holds.
    capacity: usize,
    bind_group: wgpu::BindGroup,
    linear_output: bool,
}

/// A read-only storage buffer of elements of `element_size` bytes.
fn storage_entry(binding: u32, element_size: u64) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: true },
            has_dynamic_offset: false,
            min_binding_size: NonZeroU64::new(element_size),
        },
        count: None,
    }
}

impl HeatmapGpu {
    /// Builds the pipeline for `format`. A device that cannot run the shader (no storage
    /// buffers in fragment shaders, say) gives an error instead of wgpu's default panic.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Result<Self, RenderError> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let gpu = Self::build(device, format);
        match pollster::block_on(scope.pop()) {
            None => Ok(gpu),
            Some(e) => Err(RenderError::Pipeline(e.to_string())),
        }
    }

    fn build(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("hull heatmap"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("hull heatmap"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: NonZeroU64::new(std::mem::size_of::<Params>() as u64),
                    },
                    count: None,
                },
                storage_entry(1, 4),
                storage_entry(2, 16),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("hull heatmap"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("hull heatmap"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                targets: &[Some(format.into())],
            }),
            // Corners may come in either winding (x2 above or below x1 on screen).
            primitive: wgpu::PrimitiveState {
                cull_mode: None,
                ..wgpu::PrimitiveState::default()
            },
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        });
        let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("hull heatmap params"),
            contents: bytemuck::bytes_of(&Params::zeroed_default()),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let lut = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hull heatmap colour map"),
            size: (crate::figures::VIRIDIS_LEVELS * 16) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let capacity = 1024;
        let confidences = Self::confidence_buffer(device, capacity);
        let bind_group = Self::bind_group(device, &layout, &params, &confidences, &lut);
        Self {
            pipeline,
            layout,
            params,
            lut,
            confidences,
            capacity,
            bind_group,
            linear_output: format.is_srgb(),
        }
    }

    fn confidence_buffer(device: &wgpu::Device, capacity: usize) -> wgpu::Buffer {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hull heatmap lattice"),
            size: (capacity * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    fn bind_group(
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        params: &wgpu::Buffer,
        confidences: &wgpu::Buffer,
        lut: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("hull heatmap"),
            layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: confidences.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: lut.as_entire_binding(),
                },
            ],
        })
    }

    /// Uploads a frame's data (growing the lattice buffer when needed).
    pub fn upload(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, frame: &HeatmapFrame) {
        let needed = frame.confidences.len().max(1);
        if needed > self.capacity {
            self.capacity = needed.next_power_of_two();
            self.confidences = Self::confidence_buffer(device, self.capacity);
            self.bind_group = Self::bind_group(
                device,
                &self.layout,
                &self.params,
                &self.confidences,
                &self.lut,
            );
        }
        queue.write_buffer(
            &self.params,
            0,
            bytemuck::bytes_of(&frame.params(self.linear_output)),
        );
        queue.write_buffer(&self.lut, 0, bytemuck::cast_slice(&frame.lut()));
        queue.write_buffer(
            &self.confidences,
            0,
            bytemuck::cast_slice(&frame.confidences),
        );
    }

    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }
}

impl Params {
    fn zeroed_default() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}

/// Heatmaps one frame can draw, each with buffers of its own: egui runs every callback's
/// `prepare` (the upload) before any `paint`, so two callbacks sharing buffers would both draw
/// the last upload. Slot `HULL_SLOT` is the hull's and `COMPARE_HULL_SLOT` the hull beside
/// it; the Semantic view's two maps × two triangles take the `SEMANTIC_SLOTS` after them.
pub const HULL_SLOT: usize = 0;
pub const COMPARE_HULL_SLOT: usize = 1;
pub const SEMANTIC_FIRST_SLOT: usize = 2;
pub const SEMANTIC_SLOTS: usize = 4;
const SLOTS: usize = SEMANTIC_FIRST_SLOT + SEMANTIC_SLOTS;

/// The on-screen pipelines, one per slot, kept in egui's callback resources.
struct HeatmapSlots(Vec<HeatmapGpu>);

/// Registers the on-screen pipelines with egui's renderer (once, at start-up).
pub fn register(render_state: &egui_wgpu::RenderState) -> Result<(), RenderError> {
    let slots = (0..SLOTS)
        .map(|_| HeatmapGpu::new(&render_state.device, render_state.target_format))
        .collect::<Result<Vec<_>, _>>()?;
    render_state
        .renderer
        .write()
        .callback_resources
        .insert(HeatmapSlots(slots));
    Ok(())
}

/// The paint callback that draws one frame inside an egui rect, with the buffers of `slot`.
pub struct HeatmapCallback {
    pub slot: usize,
    pub frame: HeatmapFrame,
}

impl egui_wgpu::CallbackTrait for HeatmapCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(gpu) = resources
            .get_mut::<HeatmapSlots>()
            .and_then(|h| h.0.get_mut(self.slot))
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
            .get::<HeatmapSlots>()
            .and_then(|h| h.0.get(self.slot))
        {
            gpu.draw(pass);
        }
    }
}

/// Why an offscreen render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("this GPU cannot run the heatmap shader: {0}")]
    Pipeline(String),
    #[error("the heatmap lattice does not match its resolution")]
    InvalidData,
    #[error("offscreen render size {0} px is outside 16..=8192")]
    Size(u32),
    #[error("reading the render back from the GPU failed: {0}")]
    Readback(String),
}

/// Renders `frame` offscreen into a `width` x `height` RGBA image on `background`, through the
/// same shader as the screen. `frame.corners_ndc` refer to the whole image.
pub fn render_offscreen(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    frame: &HeatmapFrame,
    width: u32,
    height: u32,
    background: [u8; 4],
) -> Result<image::RgbaImage, RenderError> {
    if !frame.is_valid() {
        return Err(RenderError::InvalidData);
    }
    for side in [width, height] {
        if !(16..=8192).contains(&side) {
            return Err(RenderError::Size(side));
        }
    }
    let format = wgpu::TextureFormat::Rgba8Unorm;
    let mut gpu = HeatmapGpu::new(device, format)?;
    gpu.upload(device, queue, frame);
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("hull heatmap offscreen"),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    let bytes_per_row = (width * 4).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
        * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("hull heatmap readback"),
        size: u64::from(bytes_per_row) * u64::from(height),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("hull heatmap offscreen"),
    });
    {
        let bg = |v: u8| f64::from(v) / 255.0;
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("hull heatmap offscreen"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color {
                        r: bg(background[0]),
                        g: bg(background[1]),
                        b: bg(background[2]),
                        a: bg(background[3]),
                    }),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        gpu.draw(&mut pass);
    }
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(bytes_per_row),
                rows_per_image: None,
            },
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
    let submission = queue.submit(std::iter::once(encoder.finish()));
    let (tx, rx) = std::sync::mpsc::channel();
    readback
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |r| drop(tx.send(r)));
    device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: Some(std::time::Duration::from_secs(30)),
        })
        .map_err(|e| RenderError::Readback(e.to_string()))?;
    rx.recv()
        .map_err(|e| RenderError::Readback(e.to_string()))?
        .map_err(|e| RenderError::Readback(e.to_string()))?;
    let data = readback
        .slice(..)
        .get_mapped_range()
        .map_err(|e| RenderError::Readback(e.to_string()))?;
    let row = (width * 4) as usize;
    let pixels: Vec<u8> = data
        .chunks_exact(bytes_per_row as usize)
        .flat_map(|r| r[..row].iter().copied())
        .collect();
    image::RgbaImage::from_raw(width, height, pixels)
        .ok_or_else(|| RenderError::Readback("the readback has the wrong size".into()))
}

/// Creates a headless wgpu device for offscreen work when no window provides one (tests, and
/// exports from the command line).
pub fn headless_device() -> Result<(wgpu::Device, wgpu::Queue), RenderError> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .map_err(|e| {
                RenderError::Readback(format!(
                    "no GPU adapter (install Mesa's lavapipe for a software one): {e}"
                ))
            })?;
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
        .map_err(|e| RenderError::Readback(format!("cannot open the GPU device: {e}")))
}

/// Corner positions in NDC for the plane positions (0,0), `p1`, `p2` of a hull geometry, fitted
/// into a target area of `width` x `height` with `margin` (fraction of the shorter side) on each
/// side, keeping the true aspect ratio. Also returns the affine map plane → pixel (y down) so
/// overlays can be placed: pixel = origin + scale · (x, −y).
pub fn fit_corners(
    p1: [f64; 2],
    p2: [f64; 2],
    width: f32,
    height: f32,
    margin: f32,
) -> ([[f32; 2]; 3], PlaneToPixel) {
    let pts = [[0.0, 0.0], p1, p2];
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in pts {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    let m = f64::from(margin * width.min(height));
    let avail_w = (f64::from(width) - 2.0 * m).max(1.0);
    let avail_h = (f64::from(height) - 2.0 * m).max(1.0);
    let span_x = (x1 - x0).max(1e-9);
    let span_y = (y1 - y0).max(1e-9);
    let scale = (avail_w / span_x).min(avail_h / span_y);
    // Centre the triangle's bounding box.
    let ox = (f64::from(width) - span_x * scale) / 2.0 - x0 * scale;
    let oy = (f64::from(height) + span_y * scale) / 2.0 + y0 * scale;
    let map = PlaneToPixel {
        origin: [ox as f32, oy as f32],
        scale: scale as f32,
    };
    let ndc = |p: [f64; 2]| {
        let [px, py] = map.apply(p);
        [px / width * 2.0 - 1.0, 1.0 - py / height * 2.0]
    };
    ([ndc(pts[0]), ndc(pts[1]), ndc(pts[2])], map)
}

/// plane (x, y up) → pixel (x, y down) of a fitted heatmap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlaneToPixel {
    pub origin: [f32; 2],
    pub scale: f32,
}

impl PlaneToPixel {
    pub fn apply(&self, p: [f64; 2]) -> [f32; 2] {
        [
            self.origin[0] + self.scale * p[0] as f32,
            self.origin[1] - self.scale * p[1] as f32,
        ]
    }
}
