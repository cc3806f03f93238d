//! The viridis colour map, quantised to 100 levels on [0, 1] as §1.9 asks.
//!
//! The table is matplotlib's 256-entry `_viridis_data` (van der Walt & Smith, released under CC0),
//! each float channel rounded to 8 bits. The 100 levels are the table resampled the way
//! matplotlib's `viridis.resampled(100)` does it: level k takes the table's colour at k/99,
//! interpolated linearly, so level 0 is exactly #440154 and level 99 exactly #fde725.

/// Number of discrete colour levels on [0, 1].
pub const VIRIDIS_LEVELS: usize = 100;

/// The colour of `value` on the 100-level viridis map.
///
/// Values are clamped to [0, 1]; NaN (which the analyses never produce, §0.2) maps to a neutral
/// grey so a bug shows up in the figure instead of silently looking like confidence 0.
pub fn viridis(value: f32) -> [u8; 3] {
    if value.is_nan() {
        return NAN_GREY;
    }
    LEVELS[level_of(value)]
}

/// Which of the 100 levels `value` falls into: floor(v·100), with v = 1 in the top level.
pub(crate) fn level_of(value: f32) -> usize {
    let v = value.clamp(0.0, 1.0);
    ((v * VIRIDIS_LEVELS as f32) as usize).min(VIRIDIS_LEVELS - 1)
}

/// The lower edge of level `k` on [0, 1] (used by the colour bar).
pub(crate) fn level_start(k: usize) -> f64 {
    k as f64 / VIRIDIS_LEVELS as f64
}

const NAN_GREY: [u8; 3] = [160, 160, 160];

/// The perceptual colour maps a figure or the app's heatmap can use, each quantised to the
/// same 100 levels. Viridis (the default, and the one §1.9 names) comes from matplotlib's
/// table above; cividis (readable with colour-vision deficiencies) and magma come from the
/// `colorous` crate's copies of the matplotlib maps, resampled at k/99 like viridis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colormap {
    #[default]
    Viridis,
    Cividis,
    Magma,
    /// Matplotlib's diverging RdBu (red at 0, blue at 1), for the semantic maps: high
    /// confidence blue, low red, so low-f "traps" inside a confident region stand out.
    /// Not in `ALL`, which lists the sequential maps the hull view offers.
    RdBu,
}

impl Colormap {
    pub const ALL: [Colormap; 3] = [Colormap::Viridis, Colormap::Cividis, Colormap::Magma];

    pub fn label(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Cividis => "cividis",
            Colormap::Magma => "magma",
            Colormap::RdBu => "RdBu",
        }
    }

    /// The colour of `value` (clamped to [0, 1]; NaN is grey, as in [`viridis`]).
    pub fn colour(self, value: f32) -> [u8; 3] {
        if value.is_nan() {
            return NAN_GREY;
        }
        self.levels()[level_of(value)]
    }

    /// The 100 level colours, level 0 first.
    pub fn levels(self) -> &'static [[u8; 3]; VIRIDIS_LEVELS] {
        static CIVIDIS: std::sync::OnceLock<[[u8; 3]; VIRIDIS_LEVELS]> = std::sync::OnceLock::new();
        static MAGMA: std::sync::OnceLock<[[u8; 3]; VIRIDIS_LEVELS]> = std::sync::OnceLock::new();
        static RDBU: std::sync::OnceLock<[[u8; 3]; VIRIDIS_LEVELS]> = std::sync::OnceLock::new();
        let from = |g: colorous::Gradient| {
            std::array::from_fn(|k| {
                let c = g.eval_continuous(k as f64 / (VIRIDIS_LEVELS - 1) as f64);
                [c.r, c.g, c.b]
            })
        };
        match self {
            Colormap::Viridis => &LEVELS,
            Colormap::Cividis => CIVIDIS.get_or_init(|| from(colorous::CIVIDIS)),
            Colormap::Magma => MAGMA.get_or_init(|| from(colorous::MAGMA)),
            Colormap::RdBu => RDBU.get_or_init(|| from(colorous::RED_BLUE)),
        }
    }
}

/// The 100 level colours, computed at compile time from the 256-entry table.
static LEVELS: [[u8; 3]; VIRIDIS_LEVELS] = resample();

const fn resample() -> [[u8; 3]; VIRIDIS_LEVELS] {
    let mut out = [[0u8; 3]; VIRIDIS_LEVELS];
    let mut k = 0;
    while k < VIRIDIS_LEVELS {
        // Position k/99 on the table, in units of 1/(255·99) so the arithmetic stays integral.
        let pos = k * 255; // table index = pos / 99
        let i = pos / (VIRIDIS_LEVELS - 1);
        let frac = pos % (VIRIDIS_LEVELS - 1); // out of 99
        let j = if i + 1 < 256 { i + 1 } else { i };
        let mut ch = 0;
        while ch < 3 {
            let a = TABLE[i][ch] as usize;
            let b = TABLE[j][ch] as usize;
            // Linear interpolation with rounding to nearest.
            let num = a * (VIRIDIS_LEVELS - 1 - frac) + b * frac;
            out[k][ch] = ((num + (VIRIDIS_LEVELS - 1) / 2) / (VIRIDIS_LEVELS - 1)) as u8;
            ch += 1;
        }
        k += 1;
    }
    out
}

/// matplotlib's viridis, 256 entries, rounded to 8 bits per channel.
#[rustfmt::skip]
const TABLE: [[u8; 3]; 256] = [
    [68, 1, 84], [68, 2, 86], [69, 4, 87], [69, 5, 89],
    [70, 7, 90], [70, 8, 92], [70, 10, 93], [70, 11, 94],
    [71, 13, 96], [71, 14, 97], [71, 16, 99], [71, 17, 100],
    [71, 19, 101], [72, 20, 103], [72, 22, 104], [72, 23, 105],
    [72, 24, 106], [72, 26, 108], [72, 27, 109], [72, 28, 110],
    [72, 29, 111], [72, 31, 112], [72, 32, 113], [72, 33, 115],
    [72, 35, 116], [72, 36, 117], [72, 37, 118], [72, 38, 119],
    [72, 40, 120], [72, 41, 121], [71, 42, 122], [71, 44, 122],
    [71, 45, 123], [71, 46, 124], [71, 47, 125], [70, 48, 126],
    [70, 50, 126], [70, 51, 127], [70, 52, 128], [69, 53, 129],
    [69, 55, 129], [69, 56, 130], [68, 57, 131], [68, 58, 131],
    [68, 59, 132], [67, 61, 132], [67, 62, 133], [66, 63, 133],
    [66, 64, 134], [66, 65, 134], [65, 66, 135], [65, 68, 135],
    [64, 69, 136], [64, 70, 136], [63, 71, 136], [63, 72, 137],
    [62, 73, 137], [62, 74, 137], [62, 76, 138], [61, 77, 138],
    [61, 78, 138], [60, 79, 138], [60, 80, 139], [59, 81, 139],
    [59, 82, 139], [58, 83, 139], [58, 84, 140], [57, 85, 140],
    [57, 86, 140], [56, 88, 140], [56, 89, 140], [55, 90, 140],
    [55, 91, 141], [54, 92, 141], [54, 93, 141], [53, 94, 141],
    [53, 95, 141], [52, 96, 141], [52, 97, 141], [51, 98, 141],
    [51, 99, 141], [50, 100, 142], [50, 101, 142], [49, 102, 142],
    [49, 103, 142], [49, 104, 142], [48, 105, 142], [48, 106, 142],
    [47, 107, 142], [47, 108, 142], [46, 109, 142], [46, 110, 142],
    [46, 111, 142], [45, 112, 142], [45, 113, 142], [44, 113, 142],
    [44, 114, 142], [44, 115, 142], [43, 116, 142], [43, 117, 142],
    [42, 118, 142], [42, 119, 142], [42, 120, 142], [41, 121, 142],
    [41, 122, 142], [41, 123, 142], [40, 124, 142], [40, 125, 142],
    [39, 126, 142], [39, 127, 142], [39, 128, 142], [38, 129, 142],
    [38, 130, 142], [38, 130, 142], [37, 131, 142], [37, 132, 142],
    [37, 133, 142], [36, 134, 142], [36, 135, 142], [35, 136, 142],
    [35, 137, 142], [35, 138, 141], [34, 139, 141], [34, 140, 141],
    [34, 141, 141], [33, 142, 141], [33, 143, 141], [33, 144, 141],
    [33, 145, 140], [32, 146, 140], [32, 146, 140], [32, 147, 140],
    [31, 148, 140], [31, 149, 139], [31, 150, 139], [31, 151, 139],
    [31, 152, 139], [31, 153, 138], [31, 154, 138], [30, 155, 138],
    [30, 156, 137], [30, 157, 137], [31, 158, 137], [31, 159, 136],
    [31, 160, 136], [31, 161, 136], [31, 161, 135], [31, 162, 135],
    [32, 163, 134], [32, 164, 134], [33, 165, 133], [33, 166, 133],
    [34, 167, 133], [34, 168, 132], [35, 169, 131], [36, 170, 131],
    [37, 171, 130], [37, 172, 130], [38, 173, 129], [39, 173, 129],
    [40, 174, 128], [41, 175, 127], [42, 176, 127], [44, 177, 126],
    [45, 178, 125], [46, 179, 124], [47, 180, 124], [49, 181, 123],
    [50, 182, 122], [52, 182, 121], [53, 183, 121], [55, 184, 120],
    [56, 185, 119], [58, 186, 118], [59, 187, 117], [61, 188, 116],
    [63, 188, 115], [64, 189, 114], [66, 190, 113], [68, 191, 112],
    [70, 192, 111], [72, 193, 110], [74, 193, 109], [76, 194, 108],
    [78, 195, 107], [80, 196, 106], [82, 197, 105], [84, 197, 104],
    [86, 198, 103], [88, 199, 101], [90, 200, 100], [92, 200, 99],
    [94, 201, 98], [96, 202, 96], [99, 203, 95], [101, 203, 94],
    [103, 204, 92], [105, 205, 91], [108, 205, 90], [110, 206, 88],
    [112, 207, 87], [115, 208, 86], [117, 208, 84], [119, 209, 83],
    [122, 209, 81], [124, 210, 80], [127, 211, 78], [129, 211, 77],
    [132, 212, 75], [134, 213, 73], [137, 213, 72], [139, 214, 70],
    [142, 214, 69], [144, 215, 67], [147, 215, 65], [149, 216, 64],
    [152, 216, 62], [155, 217, 60], [157, 217, 59], [160, 218, 57],
    [162, 218, 55], [165, 219, 54], [168, 219, 52], [170, 220, 50],
    [173, 220, 48], [176, 221, 47], [178, 221, 45], [181, 222, 43],
    [184, 222, 41], [186, 222, 40], [189, 223, 38], [192, 223, 37],
    [194, 223, 35], [197, 224, 33], [200, 224, 32], [202, 225, 31],
    [205, 225, 29], [208, 225, 28], [210, 226, 27], [213, 226, 26],
    [216, 226, 25], [218, 227, 25], [221, 227, 24], [223, 227, 24],
    [226, 228, 24], [229, 228, 25], [231, 228, 25], [234, 229, 26],
    [236, 229, 27], [239, 229, 28], [241, 229, 29], [244, 230, 30],
    [246, 230, 32], [248, 230, 33], [251, 231, 35], [253, 231, 37],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_dark_violet_and_yellow() {
        assert_eq!(viridis(0.0), [0x44, 0x01, 0x54]);
        assert_eq!(viridis(1.0), [0xfd, 0xe7, 0x25]);
        assert_eq!(viridis(-3.0), viridis(0.0));
        assert_eq!(viridis(7.0), viridis(1.0));
    }

    #[test]
    fn a_hundred_distinct_monotone_levels() {
        assert_eq!(level_of(0.0), 0);
        assert_eq!(level_of(0.0099), 0);
        assert_eq!(level_of(0.01), 1);
        assert_eq!(level_of(0.5), 50);
        assert_eq!(level_of(0.999), 99);
        // Viridis gets lighter monotonically, and neighbouring levels are distinct colours.
        let luma = |c: [u8; 3]| 0.2126 * c[0] as f64 + 0.7152 * c[1] as f64 + 0.0722 * c[2] as f64;
        for k in 1..VIRIDIS_LEVELS {
            let levels = Colormap::Viridis.levels();
            let (a, b) = (levels[k - 1], levels[k]);
            assert!(luma(b) > luma(a), "level {k}: {a:?} -> {b:?}");
        }
        // The middle of the map is the well-known teal (#21918c at 0.5 in the 256-entry table).
        let mid = viridis(0.5);
        for (c, want) in mid.iter().zip([0x21u8, 0x91, 0x8c]) {
            assert!(c.abs_diff(want) <= 3, "{mid:?}");
        }
    }

    #[test]
    fn nan_is_grey_not_a_level() {
        assert_eq!(viridis(f32::NAN), NAN_GREY);
    }
}
