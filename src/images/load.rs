//! Reading image files as 8-bit RGB and writing PNGs atomically.

use std::fs::{self, File};
use std::io::{BufWriter, Cursor, Write};
use std::path::{Path, PathBuf};

use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageBuffer, ImageReader, Limits, Pixel, PixelWithColorType, RgbImage};

use super::ImageError;

/// Largest width or height [`load_rgb`] accepts. Real photographs and datasets stay far below it;
/// a header claiming more is either corrupt or a decompression bomb, and would otherwise make us
/// allocate gigabytes before noticing.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Most memory the decoder may allocate for one image: a full-size RGBA 8-bit image at the side
/// limit, so that the byte limit never rejects something the side limit admits in 8 bits.
pub(super) const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Loads an image file as 8-bit RGB.
///
/// The format is found from the file's content, not its extension, because datasets in the wild
/// contain PNGs named `.jpg`. PNG, JPEG and WebP are read. Conversions, chosen to match
/// `PIL.Image.open(f).convert("RGB")`, which is what torchvision's `ImageFolder` does (JPEG goes
/// through libjpeg-turbo at Pillow's settings, byte for byte as Pillow decodes it, and a
/// truncated JPEG is refused as Pillow refuses it):
/// - gray is copied to all three channels;
/// - an alpha channel is dropped, not composited onto a background: Pillow's `convert("RGB")`
///   drops it too, so a model sees the same pixels here as in PyTorch;
/// - 16-bit samples become 8-bit by rounding `v * 255 / 65535` to nearest (Pillow truncates to the
///   high byte for 16-bit RGB PNGs, so those can differ from it by 1);
/// - EXIF orientation is ignored, as Pillow ignores it unless asked.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    load_rgb_with_color(path).map(|(img, _)| img)
}

/// [`load_rgb`], also saying whether the file held colour (false for gray and gray+alpha).
pub fn load_rgb_with_color(path: &Path) -> Result<(RgbImage, bool), ImageError> {
    decode_rgb_with_color(path, &read_file(path)?)
}

/// [`load_rgb_with_color`] on the bytes of an image file already in memory; `path` names it in
/// messages. Also what the `image_decode` fuzz target feeds arbitrary bytes to (see
/// [`crate::fuzzing`]).
pub fn decode_rgb_with_color(path: &Path, bytes: &[u8]) -> Result<(RgbImage, bool), ImageError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| ImageError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    match reader.format() {
        None => {
            return Err(ImageError::NotAnImage {
                path: path.to_path_buf(),
            });
        }
        // Through libjpeg-turbo, as Pillow decodes it (see `jpeg.rs`).
        Some(image::ImageFormat::Jpeg) => return super::jpeg::decode_jpeg(path, bytes),
        Some(_) => {}
    }
    let mut reader = reader;
    reader.limits(decode_limits());
    let decoded = reader.decode().map_err(|e| decode_error(path, e))?;
    let color = decoded.color().has_color();
    Ok((
        match decoded {
            // The common case needs no copy.
            DynamicImage::ImageRgb8(rgb) => rgb,
            other => other.into_rgb8(),
        },
        color,
    ))
}

fn read_file(path: &Path) -> Result<Vec<u8>, ImageError> {
    let read_err = |source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Checked before reading because reading a directory fails with a less helpful OS message.
    let meta = fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        return Err(ImageError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let bytes = fs::read(path).map_err(read_err)?;
    if bytes.is_empty() {
        return Err(ImageError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

fn decode_limits() -> Limits {
    // `Limits` is non-exhaustive, so it is built from the default rather than a literal.
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

fn decode_error(path: &Path, err: image::ImageError) -> ImageError {
    let path = path.to_path_buf();
    match err {
        image::ImageError::Limits(e) => ImageError::TooLarge {
            path,
            max_side: MAX_IMAGE_SIDE,
            max_bytes: MAX_DECODED_BYTES,
            detail: e.to_string(),
        },
        image::ImageError::Unsupported(e) => ImageError::Unsupported {
            path,
            detail: e.to_string(),
        },
        // The data comes from memory, so an I/O error here means the decoder ran off the end.
        image::ImageError::IoError(e) => ImageError::Corrupt {
            path,
            detail: format!("data ends early (truncated file?): {e}"),
        },
        other => ImageError::Corrupt {
            path,
            detail: other.to_string(),
        },
    }
}

/// Writes `img` (RGB or RGBA, 8 bits) as a PNG at `path`, atomically (see [`crate::atomic`]):
/// a reader (or a crash) sees either the old file or the complete new one, never a half-written
/// PNG.
pub fn save_png_atomic<P>(img: &ImageBuffer<P, Vec<u8>>, path: &Path) -> Result<(), ImageError>
where
    P: Pixel<Subpixel = u8> + PixelWithColorType,
{
    let mut encoded = None;
    crate::atomic::write_with(path, |file| match write_png(img, file, path) {
        Ok(()) => Ok(()),
        Err(e) => {
            let message = e.to_string();
            encoded = Some(e);
            Err(std::io::Error::other(message))
        }
    })
    .map_err(|source| {
        // An encoder error is reported as itself; an I/O error with the path.
        encoded.take().unwrap_or(ImageError::Write {
            path: path.to_path_buf(),
            source,
        })
    })
}

fn write_png<P>(
    img: &ImageBuffer<P, Vec<u8>>,
    file: &mut File,
    path: &Path,
) -> Result<(), ImageError>
where
    P: Pixel<Subpixel = u8> + PixelWithColorType,
{
    let io_err = |source: std::io::Error| ImageError::Write {
        path: PathBuf::from(path),
        source,
    };
    let mut writer = BufWriter::new(file);
    img.write_with_encoder(PngEncoder::new(&mut writer))
        .map_err(|e| match e {
            image::ImageError::IoError(source) => io_err(source),
            other => ImageError::Encode {
                path: path.to_path_buf(),
                detail: other.to_string(),
            },
        })?;
    // The sync and the rename are `atomic::write_with`'s.
    writer.flush().map_err(io_err)
}
