//! The door-side e-paper sign: what it shows, drawn with embedded-graphics on any 1-bit
//! display (a Waveshare-class panel, or [`Framebuffer`] for previews and tests).
//!
//! Chinese text uses the WenQuanYi 16 px bitmap font with the whole GB 2312 set
//! (`u8g2_font_wqy16_t_gb2312` from `u8g2-fonts`; the font is GPL-2.0 with the font
//! embedding exception). Headings are the same glyphs drawn at 2× (a 32 px look without a
//! second font). A character outside GB 2312 is an error naming it, never a blank.

use embedded_graphics::Pixel;
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle};
use u8g2_fonts::types::{FontColor, VerticalPosition};
use u8g2_fonts::{FontRenderer, fonts};

/// What the sign shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignContent<'a> {
    /// Class name, e.g. 七年级(3)班.
    pub class_name: &'a str,
    /// Date line, e.g. 11月23日 星期一.
    pub date: &'a str,
    /// The lesson now: subject, and a line with period, teacher and times.
    pub lesson: Option<(&'a str, &'a str)>,
    /// Attendance now: present (incl. late) and roster size.
    pub attendance: Option<(u32, u32)>,
    /// The next lesson, one line.
    pub next: Option<&'a str>,
    /// One notice line.
    pub notice: Option<&'a str>,
    /// Today's duty (值日), one line at the bottom.
    pub duty: Option<&'a str>,
}

/// Why the sign could not be drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignError<E> {
    /// The font has no glyph for this character.
    Glyph(char),
    /// The display refused a pixel write.
    Display(E),
}

impl<E: core::fmt::Debug> core::fmt::Display for SignError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SignError::Glyph(c) => write!(
                f,
                "the sign's font has no glyph for {c:?} (U+{:04X})",
                *c as u32
            ),
            SignError::Display(e) => write!(f, "display error: {e:?}"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for SignError<E> {}

fn font() -> FontRenderer {
    FontRenderer::new::<fonts::u8g2_font_wqy16_t_gb2312>()
}

/// Draws each pixel as a `scale`×`scale` block.
struct Scaled<'d, D> {
    inner: &'d mut D,
    scale: i32,
    origin: Point,
}

impl<D: DrawTarget<Color = BinaryColor>> OriginDimensions for Scaled<'_, D> {
    fn size(&self) -> Size {
        let s = self.inner.bounding_box().size;
        let k = self.scale.unsigned_abs();
        Size::new(s.width / k, s.height / k)
    }
}

impl<D: DrawTarget<Color = BinaryColor>> DrawTarget for Scaled<'_, D> {
    type Color = BinaryColor;
    type Error = D::Error;

    fn draw_iter<I: IntoIterator<Item = Pixel<BinaryColor>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        let (k, o) = (self.scale, self.origin);
        self.inner
            .draw_iter(pixels.into_iter().flat_map(move |Pixel(p, c)| {
                let base = o + (p - o) * k;
                (0..k * k).map(move |i| Pixel(base + Point::new(i % k, i / k), c))
            }))
    }
}

fn text<D: DrawTarget<Color = BinaryColor>>(
    d: &mut D,
    s: &str,
    at: Point,
    scale: i32,
) -> Result<(), SignError<D::Error>> {
    let f = font();
    let color = FontColor::Transparent(BinaryColor::On);
    let r = if scale == 1 {
        f.render(s, at, VerticalPosition::Top, color, d)
    } else {
        let mut big = Scaled {
            inner: d,
            scale,
            origin: at,
        };
        f.render(s, at, VerticalPosition::Top, color, &mut big)
    };
    r.map(|_| ()).map_err(|e| match e {
        u8g2_fonts::Error::GlyphNotFound(c) => SignError::Glyph(c),
        u8g2_fonts::Error::DisplayError(e) => SignError::Display(e),
        // A transparent color never needs a background.
        u8g2_fonts::Error::BackgroundColorNotSupported => SignError::Glyph('\u{0}'),
    })
}

/// Checks that every character of `s` can be drawn.
///
/// # Errors
/// The first character the font lacks.
pub fn check_glyphs(s: &str) -> Result<(), char> {
    font()
        .get_rendered_dimensions(s, Point::zero(), VerticalPosition::Top)
        .map(|_| ())
        .map_err(|u8g2_fonts::LookupError::GlyphNotFound(c)| c)
}

/// Draws `c` on `d` (cleared first). Long lines are cut at the display's edge.
///
/// # Errors
/// A character the font lacks, or the display failed.
pub fn render<D: DrawTarget<Color = BinaryColor>>(
    c: &SignContent<'_>,
    d: &mut D,
) -> Result<(), SignError<D::Error>> {
    d.clear(BinaryColor::Off).map_err(SignError::Display)?;
    let w = i32::try_from(d.bounding_box().size.width).unwrap_or(i32::MAX);
    let m = 10;
    text(d, c.class_name, Point::new(m, m), 2)?;
    text(d, c.date, Point::new(m, m + 36), 1)?;
    Line::new(Point::new(m, 66), Point::new(w - m, 66))
        .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 2))
        .draw(d)
        .map_err(SignError::Display)?;
    let mut y = 76;
    match c.lesson {
        Some((subject, line)) => {
            text(d, subject, Point::new(m, y), 2)?;
            text(d, line, Point::new(m, y + 36), 1)?;
            y += 62;
            if let Some((present, roster)) = c.attendance {
                let mut buf = Buf::default();
                let _ = core::fmt::write(&mut buf, format_args!("已到 {present} / {roster}"));
                text(d, buf.as_str(), Point::new(m, y), 2)?;
                y += 40;
            }
        }
        None => {
            text(d, "当前没有课", Point::new(m, y), 2)?;
            y += 40;
        }
    }
    if let Some(next) = c.next {
        text(d, next, Point::new(m, y), 1)?;
        y += 24;
    }
    if let Some(n) = c.notice {
        Line::new(Point::new(m, y), Point::new(w - m, y))
            .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
            .draw(d)
            .map_err(SignError::Display)?;
        text(d, n, Point::new(m, y + 6), 1)?;
        y += 28;
    }
    // The duty line sits at the bottom when the panel has room below the rest.
    let h = i32::try_from(d.bounding_box().size.height).unwrap_or(i32::MAX);
    if let Some(duty) = c.duty
        && y + 4 <= h - 26
    {
        text(d, duty, Point::new(m, h - 26), 1)?;
    }
    Ok(())
}

/// A small text buffer (no allocation).
struct Buf {
    b: [u8; 48],
    n: usize,
}

impl Default for Buf {
    fn default() -> Self {
        Self { b: [0; 48], n: 0 }
    }
}

impl Buf {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.b[..self.n]).unwrap_or("")
    }
}

impl core::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.n + s.len();
        if end > self.b.len() {
            return Err(core::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

/// A 1-bit framebuffer over a byte slice (row-major, MSB first, 1 = ink): the preview the
/// technician page shows and what tests inspect. Pixels outside are dropped.
#[derive(Debug)]
pub struct Framebuffer<'a> {
    buf: &'a mut [u8],
    width: u32,
    height: u32,
}

impl<'a> Framebuffer<'a> {
    /// Bytes needed for `width`×`height`.
    #[must_use]
    pub const fn bytes(width: u32, height: u32) -> usize {
        (width.div_ceil(8) * height) as usize
    }

    /// A framebuffer on `buf` (at least [`Framebuffer::bytes`] long).
    ///
    /// # Panics
    /// `buf` is too short (a programming error).
    pub fn new(buf: &'a mut [u8], width: u32, height: u32) -> Self {
        assert!(
            buf.len() >= Self::bytes(width, height),
            "framebuffer too small"
        );
        Self { buf, width, height }
    }

    /// Whether the pixel at (x, y) is ink.
    #[must_use]
    pub fn get(&self, x: u32, y: u32) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let i = (y * self.width.div_ceil(8) + x / 8) as usize;
        self.buf[i] & (0x80 >> (x % 8)) != 0
    }
}

impl OriginDimensions for Framebuffer<'_> {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Framebuffer<'_> {
    type Color = BinaryColor;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<BinaryColor>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        let stride = self.width.div_ceil(8);
        for Pixel(p, c) in pixels {
            let (Ok(x), Ok(y)) = (u32::try_from(p.x), u32::try_from(p.y)) else {
                continue;
            };
            if x >= self.width || y >= self.height {
                continue;
            }
            let i = (y * stride + x / 8) as usize;
            let bit = 0x80 >> (x % 8);
            if c.is_on() {
                self.buf[i] |= bit;
            } else {
                self.buf[i] &= !bit;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;

    use super::*;

    fn ink(fb: &Framebuffer<'_>, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| fb.get(x, y))
            .count()
    }

    #[test]
    fn a_lesson_sign_has_ink_where_each_part_goes() {
        let mut buf = vec![0u8; Framebuffer::bytes(400, 300)];
        let mut fb = Framebuffer::new(&mut buf, 400, 300);
        let c = SignContent {
            class_name: "七年级(3)班",
            date: "11月23日 星期一",
            lesson: Some(("语文", "第1节 王丽华 08:00-08:45")),
            attendance: Some((35, 40)),
            next: Some("下一节：数学 08:55"),
            notice: Some("期中考试将于11月27日进行"),
            duty: None,
        };
        render(&c, &mut fb).unwrap();
        assert!(ink(&fb, 0, 0, 400, 45) > 300, "class name at 2x");
        assert!(ink(&fb, 0, 76, 400, 140) > 200, "subject");
        assert!(ink(&fb, 0, 140, 400, 180) > 200, "attendance");
        assert!(ink(&fb, 0, 180, 400, 272) > 100, "next and notice");
        assert_eq!(ink(&fb, 0, 272, 400, 300), 0, "no duty line");
        // With today's duty, its line at the bottom.
        let mut buf2 = vec![0u8; Framebuffer::bytes(400, 300)];
        let mut fb2 = Framebuffer::new(&mut buf2, 400, 300);
        render(
            &SignContent {
                duty: Some("值日：姜芷若 王子轩"),
                ..c
            },
            &mut fb2,
        )
        .unwrap();
        assert!(ink(&fb2, 0, 272, 400, 300) > 100, "duty line");
        // Nothing drawn past the bottom edge survives, and the right margin stays clear.
        assert_eq!(ink(&fb, 395, 0, 400, 60), 0);
    }

    #[test]
    fn a_character_outside_gb2312_is_named_not_left_blank() {
        assert_eq!(check_glyphs("语文 数学 七年级(3)班"), Ok(()));
        let emoji = '\u{1F600}';
        assert_eq!(check_glyphs("班会 \u{1F600}"), Err(emoji));
        let mut buf = vec![0u8; Framebuffer::bytes(200, 100)];
        let mut fb = Framebuffer::new(&mut buf, 200, 100);
        let c = SignContent {
            class_name: "班\u{1F600}",
            ..SignContent::default()
        };
        assert_eq!(render(&c, &mut fb), Err(SignError::Glyph(emoji)));
    }
}
