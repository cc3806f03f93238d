// The triangular hull heatmap (ALGORITHMS.md §1.9), drawn in true geometry.
//
// One triangle covers the hull: its corners are the plotted positions of x_s, x1 and x2, and it
// carries the barycentric weights (w1, w2) of x1 and x2 to every fragment. The fragment finds
// its small lattice triangle (up: (i,j), (i+1,j), (i,j+1); down: (i+1,j), (i,j+1), (i+1,j+1)),
// interpolates the CONFIDENCE linearly inside it, and only then maps it to a colour, exactly as
// the PNG/SVG figure does (interpolating colours would invent hues the map does not have).
// Contour lines at the chosen levels are drawn where the field crosses them, one screen pixel
// wide via the field's screen-space derivative, with a white halo so they read on dark and
// bright colours alike.

struct Params {
    // Corners in clip space: x_s, x1, x2.
    p0: vec2<f32>,
    p1: vec2<f32>,
    p2: vec2<f32>,
    // Lattice resolution n: points (i, j) with i + j <= n.
    n: u32,
    contour_count: u32,
    // 1 when the render target stores linear values (an *Srgb format).
    linear_output: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    // Unused slot kept for the std140 layout (vec4 alignment).
    reserved: vec4<f32>,
    // Up to 8 contour levels, packed 4 per vec4.
    contours: array<vec4<f32>, 2>,
};

@group(0) @binding(0) var<uniform> params: Params;
// conf at lattice point (i, j), i-major then j (analysis::hull::lattice).
@group(0) @binding(1) var<storage, read> confidences: array<f32>;
// The colour map's 100 levels, sRGB in [0, 1].
@group(0) @binding(2) var<storage, read> colormap: array<vec4<f32>>;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    // (w1, w2): the weights of x1 and x2.
    @location(0) weights: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    var out: VertexOut;
    if index == 0u {
        out.position = vec4<f32>(params.p0, 0.0, 1.0);
        out.weights = vec2<f32>(0.0, 0.0);
    } else if index == 1u {
        out.position = vec4<f32>(params.p1, 0.0, 1.0);
        out.weights = vec2<f32>(1.0, 0.0);
    } else {
        out.position = vec4<f32>(params.p2, 0.0, 1.0);
        out.weights = vec2<f32>(0.0, 1.0);
    }
    return out;
}

// Index of lattice point (i, j): sum over k < i of (n + 1 - k), plus j.
fn lattice_index(i: u32, j: u32) -> u32 {
    return i * (2u * params.n + 3u - i) / 2u + j;
}

fn conf(i: u32, j: u32) -> f32 {
    return confidences[lattice_index(i, j)];
}

// The piecewise-linear confidence field at lattice coordinates (u, v) = n·(w1, w2).
fn field(u_in: f32, v_in: f32) -> f32 {
    let nf = f32(params.n);
    var u = max(u_in, 0.0);
    var v = max(v_in, 0.0);
    // Fragments on the far edge can land a hair outside the triangle.
    if u + v > nf {
        let s = nf / (u + v);
        u = u * s;
        v = v * s;
    }
    var i = u32(floor(u));
    var j = u32(floor(v));
    // A point on the hypotenuse (i + j = n) belongs to the cell below it.
    if i + j >= params.n {
        if i > 0u {
            i = i - 1u;
        } else {
            j = j - 1u;
        }
    }
    var a = u - f32(i);
    var b = v - f32(j);
    if a + b <= 1.0 || i + j + 1u >= params.n {
        // Up triangle (i,j), (i+1,j), (i,j+1). The last row has no down triangle, so a point
        // past its hypotenuse (rounding only) is pulled back onto it.
        if a + b > 1.0 {
            let s = 1.0 / (a + b);
            a = a * s;
            b = b * s;
        }
        return conf(i, j) * (1.0 - a - b) + conf(i + 1u, j) * a + conf(i, j + 1u) * b;
    }
    // Down triangle (i+1,j), (i,j+1), (i+1,j+1), in the weights of its corners.
    let wa = 1.0 - a;
    let wb = 1.0 - b;
    return conf(i + 1u, j + 1u) * (1.0 - wa - wb) + conf(i, j + 1u) * wa + conf(i + 1u, j) * wb;
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let low = c / 12.92;
    let high = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(high, low, c <= vec3<f32>(0.04045));
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let nf = f32(params.n);
    let c = field(in.weights.x * nf, in.weights.y * nf);
    // The 100 levels of figures::colormap: level = floor(c · 100), c = 1 in the top level.
    let level = min(u32(clamp(c, 0.0, 1.0) * 100.0), 99u);
    var rgb = colormap[level].rgb;

    // Contours: distance to each level in screen pixels.
    let grad = max(fwidth(c), 1e-6);
    // fwidth comes from the 2×2 pixel quad; where part of the quad lies outside the triangle
    // those lanes see the field clamped onto the edge, so the estimate jumps and would draw a
    // dark seam along every edge (visible where two triangles meet, as in the semantic
    // view's square). No contour within a pixel of an edge.
    let u = in.weights.x * nf;
    let v = in.weights.y * nf;
    let fu = fwidth(u);
    let fv = fwidth(v);
    let near_edge = u < fu || v < fv || u + v > nf - (fu + fv);
    let contour_count = select(params.contour_count, 0u, near_edge);
    for (var k = 0u; k < contour_count; k = k + 1u) {
        let level_value = params.contours[k / 4u][k % 4u];
        let d = abs(c - level_value) / grad;
        let halo = clamp(2.2 - d, 0.0, 1.0);
        let core = clamp(1.1 - d, 0.0, 1.0);
        rgb = mix(rgb, vec3<f32>(1.0), 0.85 * halo);
        rgb = mix(rgb, vec3<f32>(0.0), 0.9 * core);
    }

    if params.linear_output == 1u {
        rgb = srgb_to_linear(rgb);
    }
    return vec4<f32>(rgb, 1.0);
}
