//! The eight semantic parameters of ALGORITHMS.md §3.1: names, units, identities, default
//! domains, the normalised z-units of region growing, and the parsing and validation of a
//! user's choice (`--params rot,scale`, `--domain rot=-90:90`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a semantic setting was refused; every message names the setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SemanticError {
    #[error(
        "unknown semantic parameter `{0}`: expected one of rot, scale, tx, ty, bright, contrast, hue, blur"
    )]
    UnknownParam(String),
    #[error("no semantic parameter chosen: name one or two, e.g. --params rot,scale")]
    EmptyParams,
    #[error("semantic parameter `{0}` is named twice")]
    DuplicateParam(SemanticParam),
    #[error(
        "parameter `hue` rotates RGB colours and needs a 3-channel model; this model has {channels} channel(s)"
    )]
    HueNeedsColour { channels: usize },
    #[error("domain `{text}`: expected NAME=LO:HI, e.g. rot=-90:90")]
    DomainSyntax { text: String },
    #[error("domain of `{param}`: {detail}")]
    BadDomain {
        param: SemanticParam,
        detail: String,
    },
    #[error("{name} = {value}: {detail}")]
    BadSetting {
        name: &'static str,
        value: f64,
        detail: String,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// One semantic parameter. Order is the order of `ALL`; the transform applies them by step
/// (contrast, brightness, hue, warp, blur), not in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SemanticParam {
    Rot,
    Scale,
    Tx,
    Ty,
    Bright,
    Contrast,
    Hue,
    Blur,
}

impl SemanticParam {
    pub const ALL: [SemanticParam; 8] = [
        Self::Rot,
        Self::Scale,
        Self::Tx,
        Self::Ty,
        Self::Bright,
        Self::Contrast,
        Self::Hue,
        Self::Blur,
    ];

    /// Position in `ALL` and in a [`FullParams`] vector.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rot => "rot",
            Self::Scale => "scale",
            Self::Tx => "tx",
            Self::Ty => "ty",
            Self::Bright => "bright",
            Self::Contrast => "contrast",
            Self::Hue => "hue",
            Self::Blur => "blur",
        }
    }

    /// The natural unit, as axis labels show it.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Rot | Self::Hue => "degrees",
            Self::Scale => "zoom factor",
            Self::Tx => "fraction of width",
            Self::Ty => "fraction of height",
            Self::Bright => "added to pixels",
            Self::Contrast => "factor",
            Self::Blur => "Gaussian sigma, px",
        }
    }

    /// The value at which the parameter leaves the image unchanged.
    pub fn identity(self) -> f64 {
        match self {
            Self::Scale | Self::Contrast => 1.0,
            _ => 0.0,
        }
    }

    pub fn default_domain(self) -> Domain {
        let (lo, hi) = match self {
            Self::Rot | Self::Hue => (-180.0, 180.0),
            Self::Scale => (0.5, 1.5),
            Self::Tx | Self::Ty | Self::Bright => (-0.5, 0.5),
            Self::Contrast => (0.25, 1.75),
            Self::Blur => (0.0, 3.0),
        };
        Domain { lo, hi }
    }
}

impl fmt::Display for SemanticParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SemanticParam {
    type Err = SemanticError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| SemanticError::UnknownParam(s.to_string()))
    }
}

/// The interval [lo, hi] of one parameter, in natural units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub lo: f64,
    pub hi: f64,
}

impl Domain {
    pub fn width(&self) -> f64 {
        self.hi - self.lo
    }
}

/// All eight parameter values in natural units, indexed by [`SemanticParam::index`].
pub type FullParams = [f64; 8];

/// The identity of every parameter.
pub fn identity_params() -> FullParams {
    SemanticParam::ALL.map(SemanticParam::identity)
}

/// `rot,scale` → [Rot, Scale]; refuses unknown names, duplicates and an empty list.
pub fn parse_params(text: &str) -> Result<Vec<SemanticParam>, SemanticError> {
    let params = text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(SemanticParam::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(params)
}

/// `rot=-90:90` → (Rot, [−90, 90]).
pub fn parse_domain(text: &str) -> Result<(SemanticParam, Domain), SemanticError> {
    let syntax = || SemanticError::DomainSyntax {
        text: text.to_string(),
    };
    let (name, range) = text.split_once('=').ok_or_else(syntax)?;
    let param = SemanticParam::from_str(name)?;
    let (lo, hi) = range.split_once(':').ok_or_else(syntax)?;
    let number = |s: &str| s.trim().parse::<f64>().map_err(|_| syntax());
    Ok((
        param,
        Domain {
            lo: number(lo)?,
            hi: number(hi)?,
        },
    ))
}

/// `rot=30,scale=1.2` → a point in natural units (unnamed active parameters at identity).
pub fn parse_point(text: &str, space: &ParamSpace) -> Result<Vec<f64>, SemanticError> {
    let mut u: Vec<f64> = space.params().iter().map(|p| p.identity()).collect();
    for part in text.split(',').filter(|s| !s.trim().is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| SemanticError::DomainSyntax {
                text: text.to_string(),
            })?;
        let param = SemanticParam::from_str(name)?;
        let slot = space.position(param).ok_or_else(|| {
            SemanticError::Unsupported(format!(
                "start point names `{param}`, which is not among the chosen parameters"
            ))
        })?;
        u[slot] = value
            .trim()
            .parse::<f64>()
            .map_err(|_| SemanticError::DomainSyntax {
                text: text.to_string(),
            })?;
    }
    Ok(u)
}

/// The active parameters P with their domains, checked against the model: the space every
/// map and region works in. z_i = 100·(u_i − lo_i)/(hi_i − lo_i) maps the domain to [0, 100]ⁿ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSpace {
    params: Vec<SemanticParam>,
    domains: Vec<Domain>,
    /// The blur domain's upper bound, which fixes the blur radius R = ⌈3·σ_max⌉ (§3.1 step 5)
    /// whether or not blur is active.
    blur_max: f64,
}

impl ParamSpace {
    /// `params` with their default domains, replaced by `overrides` where given, for a model
    /// with `channels` input channels.
    pub fn new(
        params: &[SemanticParam],
        overrides: &[(SemanticParam, Domain)],
        channels: usize,
    ) -> Result<Self, SemanticError> {
        if params.is_empty() {
            return Err(SemanticError::EmptyParams);
        }
        for (i, p) in params.iter().enumerate() {
            if params[..i].contains(p) {
                return Err(SemanticError::DuplicateParam(*p));
            }
        }
        if params.contains(&SemanticParam::Hue) && channels != 3 {
            return Err(SemanticError::HueNeedsColour { channels });
        }
        let domain_of = |p: SemanticParam| {
            overrides
                .iter()
                .rev()
                .find(|(q, _)| *q == p)
                .map_or(p.default_domain(), |(_, d)| *d)
        };
        for &(p, d) in overrides {
            if !(d.lo.is_finite() && d.hi.is_finite()) {
                return Err(SemanticError::BadDomain {
                    param: p,
                    detail: format!("[{}, {}] must be finite", d.lo, d.hi),
                });
            }
            if d.lo >= d.hi {
                return Err(SemanticError::BadDomain {
                    param: p,
                    detail: format!("lower bound {} must be below upper bound {}", d.lo, d.hi),
                });
            }
            if p == SemanticParam::Blur && d.hi > MAX_BLUR_SIGMA {
                return Err(SemanticError::BadDomain {
                    param: p,
                    detail: format!(
                        "sigma up to {} px is more than the {MAX_BLUR_SIGMA} px blindspot supports",
                        d.hi
                    ),
                });
            }
            if p == SemanticParam::Scale && d.lo <= 0.0 {
                return Err(SemanticError::BadDomain {
                    param: p,
                    detail: format!("a zoom factor must be positive, not {}", d.lo),
                });
            }
        }
        Ok(Self {
            params: params.to_vec(),
            domains: params.iter().map(|&p| domain_of(p)).collect(),
            blur_max: domain_of(SemanticParam::Blur).hi,
        })
    }

    pub fn params(&self) -> &[SemanticParam] {
        &self.params
    }

    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// n = |P|.
    pub fn dim(&self) -> usize {
        self.params.len()
    }

    pub fn blur_max(&self) -> f64 {
        self.blur_max
    }

    pub fn position(&self, param: SemanticParam) -> Option<usize> {
        self.params.iter().position(|&p| p == param)
    }

    /// Natural units → z-units.
    pub fn to_z(&self, u: &[f64]) -> Vec<f64> {
        u.iter()
            .zip(&self.domains)
            .map(|(v, d)| 100.0 * (v - d.lo) / d.width())
            .collect()
    }

    /// z-units → natural units.
    pub fn to_u(&self, z: &[f64]) -> Vec<f64> {
        z.iter()
            .zip(&self.domains)
            .map(|(v, d)| d.lo + v * d.width() / 100.0)
            .collect()
    }

    /// ∂u_i/∂z_i = (hi_i − lo_i)/100, which turns ∂f/∂u into ∂f/∂z.
    pub fn z_scale(&self) -> Vec<f64> {
        self.domains.iter().map(|d| d.width() / 100.0).collect()
    }

    /// The identity of the active parameters in z-units (the default initial point).
    pub fn identity_z(&self) -> Vec<f64> {
        let u: Vec<f64> = self.params.iter().map(|p| p.identity()).collect();
        self.to_z(&u)
    }

    /// All eight values for an active point in natural units; the rest stay at identity.
    pub fn full(&self, u: &[f64]) -> FullParams {
        let mut full = identity_params();
        for (p, v) in self.params.iter().zip(u) {
            full[p.index()] = *v;
        }
        full
    }
}

/// The largest blur σ a domain may reach: the kernel radius is ⌈3σ_max⌉.
pub const MAX_BLUR_SIGMA: f64 = 20.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_names_are_named() {
        assert_eq!(
            parse_params("rot, Scale").unwrap(),
            vec![SemanticParam::Rot, SemanticParam::Scale]
        );
        let err = parse_params("rot,zoom").unwrap_err();
        assert_eq!(err, SemanticError::UnknownParam("zoom".into()));
        assert!(err.to_string().contains("`zoom`"));
        for p in SemanticParam::ALL {
            assert_eq!(p.name().parse::<SemanticParam>().unwrap(), p);
        }
    }

    #[test]
    fn domains_parse_and_bad_ones_are_refused() {
        let (p, d) = parse_domain("rot=-90:90").unwrap();
        assert_eq!((p, d.lo, d.hi), (SemanticParam::Rot, -90.0, 90.0));
        assert!(matches!(
            parse_domain("rot=-90"),
            Err(SemanticError::DomainSyntax { .. })
        ));
        let err = ParamSpace::new(
            &[SemanticParam::Rot],
            &[(p, Domain { lo: 5.0, hi: 1.0 })],
            3,
        )
        .unwrap_err();
        assert!(err.to_string().contains("rot"), "{err}");
    }

    #[test]
    fn hue_needs_three_channels_and_empty_or_doubled_sets_are_refused() {
        let err = ParamSpace::new(&[SemanticParam::Hue], &[], 1).unwrap_err();
        assert_eq!(err, SemanticError::HueNeedsColour { channels: 1 });
        assert!(err.to_string().contains("hue"));
        assert!(ParamSpace::new(&[SemanticParam::Hue], &[], 3).is_ok());
        assert_eq!(
            ParamSpace::new(&[], &[], 3).unwrap_err(),
            SemanticError::EmptyParams
        );
        assert_eq!(
            ParamSpace::new(&[SemanticParam::Tx, SemanticParam::Tx], &[], 3).unwrap_err(),
            SemanticError::DuplicateParam(SemanticParam::Tx)
        );
    }

    #[test]
    fn z_units_map_the_domain_to_0_100_and_back() {
        let space = ParamSpace::new(&[SemanticParam::Rot, SemanticParam::Scale], &[], 3).unwrap();
        assert_eq!(space.identity_z(), vec![50.0, 50.0]);
        assert_eq!(space.to_u(&[0.0, 100.0]), vec![-180.0, 1.5]);
        assert_eq!(space.z_scale(), vec![3.6, 0.01]);
        let full = space.full(&[30.0, 1.2]);
        assert_eq!(full[SemanticParam::Rot.index()], 30.0);
        assert_eq!(full[SemanticParam::Contrast.index()], 1.0);
        assert_eq!(space.blur_max(), 3.0);
        let point = parse_point("scale=1.2", &space).unwrap();
        assert_eq!(point, vec![0.0, 1.2]);
        assert!(parse_point("blur=1", &space).is_err());
    }
}
