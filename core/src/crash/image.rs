//! A crash image: the durable image plus, for some pages, a newer version
//! (possibly torn) — represented as deltas, never as a full copy.

use super::history::{CrashPoint, WriteHistory};
use crate::host::tear::{tear_page, TearGranularity};
use crate::memory::{page_spans, PageSpan};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The choice made for one page of a crash image.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageChoice {
    /// Page number.
    pub page: u64,
    /// Which candidate version reached the disk (1 = the first written after
    /// the durability frontier; 0 would be the durable version, which is
    /// never stored).
    pub version: u32,
    /// When torn: bit `i` set = unit `i` comes from this version, the rest
    /// from the version before it. `None` = the whole page.
    pub torn: Option<Vec<u64>>,
}

/// One possible disk image after a crash at a given point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashImage {
    /// The crash point.
    pub point: usize,
    /// Pages that differ from the durable image, in page order.
    pub choices: Vec<PageChoice>,
    /// Tear unit of torn pages.
    pub tear: TearGranularity,
}

/// Read access to a disk image, for checkers.
pub trait ImageReader {
    /// Size of the image.
    fn size(&self) -> u64;
    /// Reads `buf.len()` bytes at `offset` (must lie inside the image).
    fn read(&self, offset: u64, buf: &mut [u8]);

    /// Reads a little-endian u64.
    fn read_u64(&self, offset: u64) -> u64 {
        let mut b = [0u8; 8];
        self.read(offset, &mut b);
        u64::from_le_bytes(b)
    }
}

/// A crash image seen through its history.
pub struct ImageView<'a> {
    history: &'a WriteHistory,
    point: &'a CrashPoint,
    image: &'a CrashImage,
}

impl<'a> ImageView<'a> {
    /// A view of `image` at `point`.
    pub fn new(history: &'a WriteHistory, point: &'a CrashPoint, image: &'a CrashImage) -> Self {
        ImageView { history, point, image }
    }

    /// The content of one page in this image.
    pub fn page(&self, page: u64) -> Vec<u8> {
        self.page_ref(page).into_owned()
    }

    /// The content of one page, borrowed unless the page is torn.
    pub fn page_ref(&self, page: u64) -> Cow<'a, [u8]> {
        let (base, _) = self.history.base(page, self.point);
        match self.image.choices.binary_search_by_key(&page, |c| c.page) {
            Err(_) => Cow::Borrowed(base),
            Ok(i) => {
                let c = &self.image.choices[i];
                let cands = self.history.candidates(page, self.point);
                let v = (c.version as usize).clamp(1, cands.len().max(1));
                let Some(new) = cands.get(v - 1) else { return Cow::Borrowed(base) };
                match &c.torn {
                    None => Cow::Borrowed(&new.data),
                    Some(mask) => {
                        let old: &[u8] = if v >= 2 { &cands[v - 2].data } else { base };
                        Cow::Owned(tear_page(old, &new.data, self.image.tear, mask))
                    }
                }
            }
        }
    }
}

impl ImageReader for ImageView<'_> {
    fn size(&self) -> u64 {
        self.history.size()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) {
        for PageSpan { page, in_page, range } in page_spans(offset, buf.len()) {
            let n = range.len();
            let content = self.page_ref(page);
            buf[range].copy_from_slice(&content[in_page..in_page + n]);
        }
    }
}
