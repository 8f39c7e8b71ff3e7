//! Frames: 8-bit RGB images in memory, from a camera or an image file, and the sampling
//! the pipelines need (letterboxed resize into a model's input, affine warps for face
//! alignment), all with bilinear interpolation.

use std::path::Path;

use crate::error::{ModelError, Result};

/// An RGB frame, row-major, 3 bytes per pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the pixels: a frame shows students.
        write!(f, "Frame({}×{})", self.width, self.height)
    }
}

/// The smallest frame a pipeline accepts.
pub const MIN_SIDE: u32 = 32;

/// Largest width or height of an image [`Frame::decode`] accepts (a 36-megapixel photo).
pub const MAX_DECODE_SIDE: u32 = 6000;
/// Most memory the decoder may allocate for one image.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

impl Frame {
    /// A frame from raw RGB bytes.
    ///
    /// # Errors
    /// The buffer does not hold `width × height` pixels, or a side is under [`MIN_SIDE`].
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<Self> {
        let want = width as usize * height as usize * 3;
        if rgb.len() != want {
            return Err(ModelError::Input(format!(
                "a {width}×{height} RGB frame needs {want} bytes, got {}",
                rgb.len()
            )));
        }
        if width < MIN_SIDE || height < MIN_SIDE {
            return Err(ModelError::Input(format!(
                "a {width}×{height} frame is too small (at least {MIN_SIDE}×{MIN_SIDE})"
            )));
        }
        Ok(Self { width, height, rgb })
    }

    /// Reads a PNG or JPEG file (grey images become RGB).
    ///
    /// # Errors
    /// The file cannot be read or decoded (named), or is too small.
    pub fn open(path: &Path) -> Result<Self> {
        let img = image::open(path)
            .map_err(|e| ModelError::Input(format!("image {}: {e}", path.display())))?
            .into_rgb8();
        let (w, h) = img.dimensions();
        Self::from_rgb(w, h, img.into_raw())
            .map_err(|e| ModelError::Input(format!("image {}: {e}", path.display())))
    }

    /// Decodes PNG or JPEG bytes (an uploaded photo), within [`MAX_DECODE_SIDE`] pixels a
    /// side and [`MAX_DECODE_BYTES`] of decoder memory: a small file declaring a huge
    /// picture (a 249 kB PNG of 16,000×16,000) is refused before it is decoded.
    ///
    /// # Errors
    /// The bytes are not an image that can be decoded, it is too large, or too small.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let unreadable = |e: image::ImageError| {
            ModelError::Input(format!(
                "the image is not a PNG or JPEG that can be read: {e}"
            ))
        };
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ModelError::Input(format!("the image cannot be read: {e}")))?;
        let (w, h) = reader.into_dimensions().map_err(unreadable)?;
        if w > MAX_DECODE_SIDE || h > MAX_DECODE_SIDE {
            return Err(ModelError::Input(format!(
                "the image is {w}×{h} pixels; at most {MAX_DECODE_SIDE}×{MAX_DECODE_SIDE} is accepted"
            )));
        }
        reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ModelError::Input(format!("the image cannot be read: {e}")))?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_DECODE_SIDE);
        limits.max_image_height = Some(MAX_DECODE_SIDE);
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(limits);
        let img = reader.decode().map_err(unreadable)?.into_rgb8();
        let (w, h) = img.dimensions();
        Self::from_rgb(w, h, img.into_raw())
    }

    /// Width in pixels.
    #[must_use]
    pub const fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    #[must_use]
    pub const fn height(&self) -> u32 {
        self.height
    }

    /// The pixels.
    #[must_use]
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// The frame mirrored left to right.
    #[must_use]
    pub fn mirrored(&self) -> Self {
        let w = self.width as usize;
        let mut out = self.rgb.clone();
        for (row_in, row_out) in self
            .rgb
            .chunks_exact(w * 3)
            .zip(out.chunks_exact_mut(w * 3))
        {
            for x in 0..w {
                row_out[x * 3..x * 3 + 3].copy_from_slice(&row_in[(w - 1 - x) * 3..(w - x) * 3]);
            }
        }
        Self {
            width: self.width,
            height: self.height,
            rgb: out,
        }
    }

    /// The rectangle (`x`, `y`, `w`, `h` in pixels, clipped to the frame) as a new frame.
    ///
    /// # Errors
    /// The clipped rectangle is smaller than [`MIN_SIDE`].
    pub fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Result<Self> {
        let x1 = (x + w).min(self.width);
        let y1 = (y + h).min(self.height);
        let (x, y) = (x.min(x1), y.min(y1));
        let cw = (x1 - x) as usize;
        let mut rgb = Vec::with_capacity(cw * (y1 - y) as usize * 3);
        for row in y..y1 {
            let start = (row as usize * self.width as usize + x as usize) * 3;
            rgb.extend_from_slice(&self.rgb[start..start + cw * 3]);
        }
        Self::from_rgb(x1 - x, y1 - y, rgb)
    }

    /// Mean brightness 0–255 (black or covered cameras read near 0).
    #[must_use]
    pub fn mean_luma(&self) -> f32 {
        let n = (self.width as usize * self.height as usize).max(1);
        let sum: u64 = self
            .rgb
            .chunks_exact(3)
            .map(|p| (u64::from(p[0]) * 299 + u64::from(p[1]) * 587 + u64::from(p[2]) * 114) / 1000)
            .sum();
        sum as f32 / n as f32
    }

    /// Bilinear sample of channel `c` at (`x`, `y`) in pixel coordinates; outside the frame
    /// reads as 0 (black).
    fn sample(&self, x: f32, y: f32, c: usize) -> f32 {
        let (w, h) = (self.width as i64, self.height as i64);
        let x0 = x.floor();
        let y0 = y.floor();
        let fx = x - x0;
        let fy = y - y0;
        let px = |xi: i64, yi: i64| -> f32 {
            if xi < 0 || yi < 0 || xi >= w || yi >= h {
                0.0
            } else {
                f32::from(self.rgb[((yi * w + xi) * 3) as usize + c])
            }
        };
        let (xi, yi) = (x0 as i64, y0 as i64);
        let top = px(xi, yi) * (1.0 - fx) + px(xi + 1, yi) * fx;
        let bottom = px(xi, yi + 1) * (1.0 - fx) + px(xi + 1, yi + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }

    /// Fills an NHWC `size × size × 3` buffer with `map(x_out, y_out) -> (x_in, y_in)`
    /// sampling, each channel value passed through `norm`.
    pub(crate) fn warp_into(
        &self,
        size: usize,
        out: &mut [f32],
        map: impl Fn(f32, f32) -> (f32, f32),
        norm: impl Fn(f32) -> f32,
    ) {
        for yo in 0..size {
            for xo in 0..size {
                // Pixel centres.
                let (xi, yi) = map(xo as f32 + 0.5, yo as f32 + 0.5);
                for c in 0..3 {
                    out[(yo * size + xo) * 3 + c] = norm(self.sample(xi - 0.5, yi - 0.5, c));
                }
            }
        }
    }
}

/// Intersection over union of two boxes (x, y, w, h).
pub(crate) fn iou(a: (f32, f32, f32, f32), b: (f32, f32, f32, f32)) -> f32 {
    let ix = (a.0 + a.2).min(b.0 + b.2) - a.0.max(b.0);
    let iy = (a.1 + a.3).min(b.1 + b.3) - a.1.max(b.1);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / (a.2 * a.3 + b.2 * b.3 - inter)
}

/// Where a square model input sits on a frame region after letterboxing: input pixel
/// (u, v) is frame pixel (`x0 + u·scale`, `y0 + v·scale`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Letterbox {
    pub(crate) x0: f32,
    pub(crate) y0: f32,
    pub(crate) scale: f32,
}

impl Letterbox {
    /// Fits the region (`rx`, `ry`, `rw`, `rh`) into a `size`-pixel square, centred, keeping
    /// its aspect ratio.
    pub(crate) fn fit(rx: f32, ry: f32, rw: f32, rh: f32, size: usize) -> Self {
        let scale = rw.max(rh) / size as f32;
        Self {
            x0: rx + (rw - size as f32 * scale) / 2.0,
            y0: ry + (rh - size as f32 * scale) / 2.0,
            scale,
        }
    }

    /// Frame coordinates of the normalised input point (`u`, `v` in 0–1).
    pub(crate) fn to_frame(self, u: f32, v: f32, size: usize) -> (f32, f32) {
        (
            self.x0 + u * size as f32 * self.scale,
            self.y0 + v * size as f32 * self.scale,
        )
    }
}

/// A PNG file of a few dozen bytes whose header declares `w`×`h` pixels (an image bomb:
/// decoding it would allocate w×h×3 bytes). For tests.
#[doc(hidden)]
#[must_use]
pub fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // A first IDAT (an empty zlib stream: decoders read up to it for the header) and IEND.
    for (kind, data) in [
        (
            &b"IDAT"[..],
            &[0x78u8, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01][..],
        ),
        (&b"IEND"[..], &[][..]),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        png.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_bomb_is_refused_before_it_is_decoded() {
        let bomb = png_header_only(16_000, 16_000);
        assert!(bomb.len() < 100, "{} bytes", bomb.len());
        let e = Frame::decode(&bomb).unwrap_err().to_string();
        assert!(e.contains("16000×16000") && e.contains("6000×6000"), "{e}");
    }

    fn checker() -> Frame {
        let mut rgb = Vec::new();
        for y in 0..64u32 {
            for x in 0..64u32 {
                let v = if (x / 8 + y / 8) % 2 == 0 { 255 } else { 0 };
                rgb.extend_from_slice(&[v, x as u8, y as u8]);
            }
        }
        Frame::from_rgb(64, 64, rgb).unwrap()
    }

    #[test]
    fn frames_of_the_wrong_size_or_too_small_are_refused() {
        assert!(Frame::from_rgb(64, 64, vec![0; 10]).is_err());
        let e = Frame::from_rgb(8, 8, vec![0; 192]).unwrap_err().to_string();
        assert!(e.contains("too small"), "{e}");
    }

    #[test]
    fn an_identity_warp_reproduces_the_frame_and_mirroring_flips_it() {
        let f = checker();
        let mut out = vec![0f32; 64 * 64 * 3];
        f.warp_into(64, &mut out, |x, y| (x, y), |v| v);
        for (a, b) in out.iter().zip(f.rgb()) {
            assert!((a - f32::from(*b)).abs() < 1e-3);
        }
        let m = f.mirrored();
        assert_eq!(m.rgb()[1], 63, "x channel of the first pixel is now 63");
        assert_eq!(m.mirrored(), f);
    }

    #[test]
    fn a_letterbox_keeps_the_aspect_and_centres_the_region() {
        let lb = Letterbox::fit(0.0, 0.0, 200.0, 100.0, 100);
        assert!((lb.scale - 2.0).abs() < 1e-6);
        assert!((lb.y0 + 50.0).abs() < 1e-6);
        assert_eq!(lb.to_frame(0.5, 0.5, 100), (100.0, 50.0));
    }

    #[test]
    fn a_black_frame_has_no_brightness() {
        let f = Frame::from_rgb(40, 40, vec![0; 40 * 40 * 3]).unwrap();
        assert!(f.mean_luma() < 0.5);
        assert!(checker().mean_luma() > 50.0);
    }
}
