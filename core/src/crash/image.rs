//! A crash image: the durable image plus, for some pages, a newer version
//! (possibly torn) — represented as deltas, never as a full copy.

use super::history::{CrashPoint, WriteHistory};
use super::index::{DenseImage, PointIndex};
use crate::host::tear::TearGranularity;
use serde::{Deserialize, Serialize};

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

/// One possible disk image after a crash at a given point, in the sparse
/// form reports and state files keep (the hot path uses
/// [`DenseImage`]).
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

/// A sparse crash image seen through its history: builds the point's
/// index once (use [`PointIndex`] directly to read many images of one
/// point).
pub struct ImageView<'a> {
    index: PointIndex<'a>,
    image: DenseImage,
}

impl<'a> ImageView<'a> {
    /// A view of `image` at `point`.
    pub fn new(history: &'a WriteHistory, point: &CrashPoint, image: &CrashImage) -> Self {
        let index = PointIndex::new(history, point);
        let image = index.densify(image);
        ImageView { index, image }
    }

    /// The content of one page in this image.
    pub fn page(&self, page: u64) -> Vec<u8> {
        self.index.view(&self.image).page(page)
    }
}

impl ImageReader for ImageView<'_> {
    fn size(&self) -> u64 {
        self.index.model().size()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) {
        self.index.view(&self.image).read(offset, buf)
    }
}
