//! JPEG decoding exactly as PyTorch pipelines see it: through libjpeg-turbo (built from source
//! by the `mozjpeg` crate), at Pillow's settings (integer "slow" IDCT, fancy upsampling), then
//! Pillow's `convert("RGB")` rules for gray and CMYK. zune-jpeg, which the `image` crate uses,
//! rounds differently by up to a few levels; on 187 ImageNet JPEGs this decoder and Pillow 13
//! agree on every byte.
//!
//! One thing the `mozjpeg` crate does not give: it silences libjpeg's warnings, and a truncated
//! file is only a warning there ("premature end of JPEG file", after which libjpeg pads the
//! image with grey). Pillow refuses such a file ("image file is truncated"), so we install our
//! own error manager that turns that warning into an error, as libjpeg lets an application do.

use std::os::raw::c_int;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use image::RgbImage;
use mozjpeg_sys::{J_COLOR_SPACE, jpeg_common_struct, jpeg_error_mgr};

use super::ImageError;
use super::load::{MAX_DECODED_BYTES, MAX_IMAGE_SIDE};

/// Why decoding stopped, carried out of libjpeg by unwinding (libjpeg's error exit must not
/// return, and `mozjpeg` expects errors to unwind).
struct Stop(String);

const TRUNCATED: &str =
    "the file ends early (truncated): Pillow refuses it as \"image file is truncated\"";

/// libjpeg's fatal errors: the formatted message, carried out as a [`Stop`].
extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
    std::panic::resume_unwind(Box::new(Stop(message(cinfo))));
}

/// libjpeg's warnings and traces: a premature end of data stops the decode; other warnings
/// (corrupt data that libjpeg recovers from) are ignored, as Pillow ignores them.
extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, level: c_int) {
    // SAFETY: libjpeg calls this with its live common struct, whose `err` is our manager.
    let code = unsafe { cinfo.err.as_ref() }.map_or(0, |e| e.msg_code);
    if level < 0 && code == mozjpeg_sys::JWRN_JPEG_EOF as c_int {
        std::panic::resume_unwind(Box::new(Stop(TRUNCATED.into())));
    }
}

/// The current message of libjpeg's error manager, formatted.
fn message(cinfo: &mut jpeg_common_struct) -> String {
    // libjpeg-turbo's JMSG_LENGTH_MAX.
    let mut buffer = [0u8; 200];
    // SAFETY: `err` points to our manager while libjpeg runs. `format_message` is libjpeg's own,
    // whose C signature is (j_common_ptr, char *) writing at most JMSG_LENGTH_MAX bytes; the
    // binding declares the buffer as `&[u8; 80]`, so it is called through the C signature with
    // a buffer of the full length.
    let formatted = unsafe {
        let format = cinfo.err.as_ref().and_then(|e| e.format_message);
        format.map(|f| {
            let f: unsafe extern "C-unwind" fn(*mut jpeg_common_struct, *mut u8) =
                std::mem::transmute(f);
            f(cinfo, buffer.as_mut_ptr());
        })
    };
    match formatted {
        Some(()) => {
            let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
            String::from_utf8_lossy(&buffer[..end]).into_owned()
        }
        None => "libjpeg error".into(),
    }
}

/// An error manager that reports through [`error_exit`] and [`emit_message`].
fn error_manager() -> jpeg_error_mgr {
    // SAFETY: `jpeg_error_mgr` is a C struct of function pointers (nullable), integers and
    // pointers, for which all-zero is valid; `jpeg_std_error` then fills in libjpeg's defaults.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `err` is a valid, exclusively borrowed manager.
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(emit_message);
    err
}

/// Decodes JPEG `bytes` (read from `path`) to 8-bit RGB as `PIL.Image.open(path).convert("RGB")`
/// does, and says whether it held colour.
pub fn decode_jpeg(path: &Path, bytes: &[u8]) -> Result<(RgbImage, bool), ImageError> {
    let corrupt = |detail: String| ImageError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| decode(path, bytes)));
    match decoded {
        Ok(result) => result,
        Err(payload) => match payload.downcast::<Stop>() {
            Ok(stop) => Err(corrupt(stop.0)),
            Err(other) => match other.downcast::<String>() {
                // `mozjpeg`'s own messages (from its source manager) come as strings.
                Ok(text) => Err(corrupt(*text)),
                Err(other) => std::panic::resume_unwind(other),
            },
        },
    }
}

fn decode(path: &Path, bytes: &[u8]) -> Result<(RgbImage, bool), ImageError> {
    let corrupt = |detail: String| ImageError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let mut d = mozjpeg::Decompress::builder()
        .with_err(error_manager())
        .from_mem(bytes)
        .map_err(|e| corrupt(e.to_string()))?;
    // Checked on the header, before a pixel is allocated: a bomb is refused here.
    let (width, height) = (d.width(), d.height());
    let side = u32::try_from(width.max(height)).unwrap_or(u32::MAX);
    let bytes_needed = (width as u64) * (height as u64) * 4;
    if side > MAX_IMAGE_SIDE || bytes_needed > MAX_DECODED_BYTES {
        return Err(ImageError::TooLarge {
            path: path.to_path_buf(),
            max_side: MAX_IMAGE_SIDE,
            max_bytes: MAX_DECODED_BYTES,
            detail: format!("the JPEG header says {width}×{height}"),
        });
    }
    // Pillow's settings (libjpeg's defaults, set here so a change of default cannot move us).
    d.dct_method(mozjpeg::DctMethod::IntegerSlow);
    d.do_fancy_upsampling(true);
    let color_space = d.color_space();
    let (w, h) = (width as u32, height as u32);
    let to_image = |pixels: Vec<u8>| {
        RgbImage::from_raw(w, h, pixels)
            .ok_or_else(|| corrupt("the decoder returned fewer pixels than the header says".into()))
    };
    let read = |mut started: mozjpeg::decompress::DecompressStarted<&[u8]>| {
        let pixels = started
            .read_scanlines::<u8>()
            .map_err(|e| corrupt(e.to_string()))?;
        started.finish().map_err(|e| corrupt(e.to_string()))?;
        Ok::<_, ImageError>(pixels)
    };
    match color_space {
        // Pillow opens these as CMYK with Adobe's inverted convention ("CMYK;I"), whatever the
        // markers say, and its convert("RGB") computes (255 − k)·(255 − c)/255 per channel.
        J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK => {
            let started = d
                .to_colorspace(J_COLOR_SPACE::JCS_CMYK)
                .map_err(|e| corrupt(e.to_string()))?;
            let cmyk = read(started)?;
            Ok((to_image(cmyk_to_rgb_like_pillow(&cmyk))?, true))
        }
        _ => {
            let color = color_space != J_COLOR_SPACE::JCS_GRAYSCALE;
            // libjpeg's gray → RGB copies the gray value, as Pillow's convert("RGB") does.
            let started = d.rgb().map_err(|e| corrupt(e.to_string()))?;
            Ok((to_image(read(started)?)?, color))
        }
    }
}

/// Pillow's CMYK → RGB for a JPEG opened as "CMYK;I": invert the samples, then
/// `nk − nk·c/255` with nk = 255 − k, in Pillow's integer rounding (`MULDIV255`).
pub fn cmyk_to_rgb_like_pillow(inverted: &[u8]) -> Vec<u8> {
    let muldiv255 = |a: u32, b: u32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut out = Vec::with_capacity(inverted.len() / 4 * 3);
    for px in inverted.chunks_exact(4) {
        let [c, m, y, k] = [px[0], px[1], px[2], px[3]].map(|v| u32::from(255 - v));
        let nk = 255 - k;
        for v in [c, m, y] {
            out.push(nk.saturating_sub(muldiv255(v, nk)) as u8);
        }
    }
    out
}
