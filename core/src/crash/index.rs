//! Crash images at memory speed: a flat index of one crash point, and
//! images as one small number per pending page.
//!
//! A [`PointIndex`] numbers the pages pending at a crash point (slots, in
//! page order) and keeps, per slot, the durable content and the candidate
//! versions, plus a page → slot table (a flat array for devices of up to
//! 2^20 pages, a sorted vector above). A [`DenseImage`] says, per slot,
//! which version reached the disk (0 = the durable one) and which slots
//! tore. Reading a page of an image is then two array lookups and a copy,
//! with no allocation: no map is searched and no page is copied.

use super::history::{CrashPoint, WriteHistory};
use super::image::{CrashImage, ImageReader, PageChoice};
use crate::durability::DurabilityModel;
use crate::durability::PageVersion;
use crate::host::tear::{tear_into, TearGranularity};
use crate::memory::{page_spans, PageSpan, PAGE_SIZE};

/// One page's bytes (a thin reference: half the index's footprint).
type Page = [u8; PAGE_SIZE as usize];

/// Every version is a whole page; anything else would be a bug upstream,
/// and reads as zeros rather than panicking.
fn as_page(data: &[u8]) -> &Page {
    static ZERO: Page = [0u8; PAGE_SIZE as usize];
    data.try_into().unwrap_or(&ZERO)
}

/// Devices up to this many pages get a flat page → slot table.
const FLAT_LIMIT: u64 = 1 << 20;

/// "Not pending" in the flat table.
const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
enum Lookup {
    /// Slot + 1 per page (0 = not pending), when fewer than 65,535 pages
    /// are pending: half the cache footprint of `Flat`.
    Small(Vec<u16>),
    Flat(Vec<u32>),
    Sorted,
}

/// The pending pages of one crash point, indexed for reading images.
#[derive(Clone, Debug)]
pub struct PointIndex<'a> {
    model: &'a DurabilityModel,
    point: CrashPoint,
    pages: Vec<u64>,
    /// Per slot, its contents in version order — the durable one, then each
    /// candidate — flattened, so reading a page touches two small arrays.
    contents: Vec<&'a Page>,
    /// Where each slot's contents start in `contents`.
    first: Vec<u32>,
    base_hashes: Vec<u64>,
    candidates: Vec<&'a [PageVersion]>,
    lookup: Lookup,
}

impl<'a> PointIndex<'a> {
    /// Indexes `point` of `history`.
    pub fn new(history: &'a WriteHistory, point: &CrashPoint) -> Self {
        PointIndex::of_model(history.model(), point)
    }

    /// Indexes a crash *now* of a live model: writes `0..durable_upto()`
    /// durable, every write since pending.
    pub fn now(model: &'a DurabilityModel) -> Self {
        let point = CrashPoint {
            index: 0,
            after_event: None,
            writes_done: model.writes(),
            durable_upto: model.durable_upto(),
            acked_flushes: 0,
            failed_flushes: 0,
        };
        PointIndex::of_model(model, &point)
    }

    /// Indexes the crash point `point` of `model`.
    pub fn of_model(model: &'a DurabilityModel, point: &CrashPoint) -> Self {
        let pending = model.pending(point.durable_upto, point.writes_done);
        let mut idx = PointIndex {
            model,
            point: point.clone(),
            pages: Vec::with_capacity(pending.len()),
            contents: Vec::with_capacity(pending.len() * 2),
            first: Vec::with_capacity(pending.len()),
            base_hashes: Vec::with_capacity(pending.len()),
            candidates: Vec::with_capacity(pending.len()),
            lookup: Lookup::Sorted,
        };
        for p in &pending {
            idx.pages.push(p.page);
            idx.first.push(idx.contents.len() as u32);
            idx.contents.push(as_page(p.base));
            idx.contents.extend(p.candidates.iter().map(|v| as_page(v.data())));
            idx.base_hashes.push(p.base_hash);
            idx.candidates.push(p.candidates);
        }
        let device_pages = model.size().div_ceil(PAGE_SIZE);
        if device_pages <= FLAT_LIMIT && !pending.is_empty() {
            if idx.pages.len() < u16::MAX as usize {
                let mut table = vec![0u16; device_pages as usize];
                for (slot, &page) in idx.pages.iter().enumerate() {
                    table[page as usize] = slot as u16 + 1;
                }
                idx.lookup = Lookup::Small(table);
            } else {
                let mut table = vec![NONE; device_pages as usize];
                for (slot, &page) in idx.pages.iter().enumerate() {
                    table[page as usize] = slot as u32;
                }
                idx.lookup = Lookup::Flat(table);
            }
        }
        idx
    }

    /// The durability model indexed.
    pub fn model(&self) -> &'a DurabilityModel {
        self.model
    }

    /// The crash point.
    pub fn point(&self) -> &CrashPoint {
        &self.point
    }

    /// Number of pending pages (slots).
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// True when nothing is pending: the only image is the durable one.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The page of a slot.
    pub fn page(&self, slot: usize) -> u64 {
        self.pages[slot]
    }

    /// Pages per host folio of the model's device.
    pub fn folio_pages(&self) -> u64 {
        self.model.folio_pages()
    }

    /// The candidates of a slot, oldest first.
    pub fn candidates(&self, slot: usize) -> &'a [PageVersion] {
        self.candidates[slot]
    }

    /// Hash of a slot's durable content.
    pub fn base_hash(&self, slot: usize) -> u64 {
        self.base_hashes[slot]
    }

    /// The slot of a page, if it is pending.
    #[inline]
    pub fn slot(&self, page: u64) -> Option<usize> {
        match &self.lookup {
            Lookup::Small(t) => t.get(page as usize).copied().filter(|&s| s != 0).map(|s| s as usize - 1),
            Lookup::Flat(t) => t.get(page as usize).copied().filter(|&s| s != NONE).map(|s| s as usize),
            Lookup::Sorted => self.pages.binary_search(&page).ok(),
        }
    }

    /// The content hash of the version `version` of `slot` (0 = durable).
    pub fn version_hash(&self, slot: usize, version: u32) -> u64 {
        match version {
            0 => self.base_hashes[slot],
            v => self.candidates[slot][v as usize - 1].hash(),
        }
    }

    /// A reader of `image` (which must have been made for this index).
    pub fn view<'i>(&'i self, image: &'i DenseImage) -> DenseView<'i, 'a> {
        DenseView { index: self, image }
    }

    /// The dense form of a sparse image of this point. Choices of pages
    /// not pending, or of versions that do not exist, are clamped to what
    /// exists (an image read from a report is never trusted to index out
    /// of range).
    pub fn densify(&self, image: &CrashImage) -> DenseImage {
        let mut d = DenseImage::durable(self.len(), image.tear);
        for c in &image.choices {
            let Some(slot) = self.slot(c.page) else { continue };
            let n = self.candidates[slot].len() as u32;
            let v = c.version.min(n);
            if v == 0 {
                continue;
            }
            d.versions[slot] = v;
            if let Some(mask) = &c.torn {
                d.torn.push((slot as u32, mask.clone()));
            }
        }
        d.torn.sort_by_key(|(s, _)| *s);
        d
    }

    /// The sparse form of a dense image (pages that differ from the durable
    /// image, in page order), as reports and state files keep it.
    pub fn sparsify(&self, image: &DenseImage) -> CrashImage {
        let mut choices = Vec::new();
        let mut torn = image.torn.iter().peekable();
        for (slot, &v) in image.versions.iter().enumerate() {
            let mask = match torn.peek() {
                Some((s, _)) if *s as usize == slot => torn.next().map(|(_, m)| m.clone()),
                _ => None,
            };
            if v > 0 {
                choices.push(PageChoice { page: self.pages[slot], version: v, torn: mask });
            }
        }
        CrashImage { point: self.point.index, choices, tear: image.tear }
    }

    /// Version `v` (0 = durable) of a slot's page.
    #[inline]
    fn content(&self, slot: usize, v: usize) -> &'a [u8] {
        self.contents[self.first[slot] as usize + v]
    }

    /// Copies page `page` of `image` into `out` (4 KiB).
    fn read_page(&self, image: &DenseImage, page: u64, out: &mut [u8]) {
        let Some(slot) = self.slot(page) else {
            out.copy_from_slice(self.model.base(page, self.point.durable_upto).0);
            return;
        };
        let v = image.versions[slot] as usize;
        if v == 0 {
            out.copy_from_slice(self.content(slot, 0));
            return;
        }
        let cands = self.candidates[slot];
        let new = cands[v - 1].data();
        match image.mask(slot) {
            None => out.copy_from_slice(new),
            Some(mask) => {
                out.copy_from_slice(self.content(slot, v - 1));
                tear_into(out, new, image.tear, mask);
            }
        }
    }

    /// Borrows page `page` of an untorn slot of `image`, or `None` when the
    /// page is torn in it (it must then be built). (Always inlined: it is
    /// the whole of a checker's read but for one load of the page's bytes.)
    #[inline(always)]
    fn page_ref(&self, image: &DenseImage, page: u64) -> Option<&'a Page> {
        let Some(slot) = self.slot(page) else { return self.durable_page(page) };
        let v = image.versions[slot] as usize;
        // Whether the image tears anything first: that branch is
        // predictable, where one on the version chosen is a coin toss.
        if !image.torn.is_empty() && v != 0 && image.mask(slot).is_some() {
            return None;
        }
        Some(self.contents[self.first[slot] as usize + v])
    }

    /// The durable content of a page not pending at this point.
    #[cold]
    fn durable_page(&self, page: u64) -> Option<&'a Page> {
        self.model.base(page, self.point.durable_upto).0.try_into().ok()
    }
}

/// A crash image of one point: per slot of its [`PointIndex`], the version
/// that reached the disk (0 = the durable one), and the torn slots.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DenseImage {
    /// Version per slot.
    pub versions: Vec<u32>,
    /// Torn slots, in slot order, with their masks (bit `i` set = unit `i`
    /// comes from the chosen version, the rest from the one before it).
    pub torn: Vec<(u32, Vec<u64>)>,
    /// Tear unit.
    pub tear: TearGranularity,
}

impl DenseImage {
    /// The durable image of a point with `slots` pending pages.
    pub fn durable(slots: usize, tear: TearGranularity) -> Self {
        DenseImage { versions: vec![0; slots], torn: Vec::new(), tear }
    }

    fn mask(&self, slot: usize) -> Option<&[u64]> {
        if self.torn.is_empty() {
            return None;
        }
        self.torn.binary_search_by_key(&(slot as u32), |(s, _)| *s).ok().map(|i| self.torn[i].1.as_slice())
    }
}

/// Reads a [`DenseImage`] through its [`PointIndex`].
#[derive(Clone, Copy)]
pub struct DenseView<'i, 'a> {
    index: &'i PointIndex<'a>,
    image: &'i DenseImage,
}

impl DenseView<'_, '_> {
    /// The content of one page in this image.
    pub fn page(&self, page: u64) -> Vec<u8> {
        let mut out = vec![0u8; PAGE_SIZE as usize];
        self.index.read_page(self.image, page, &mut out);
        out
    }
}

impl ImageReader for DenseView<'_, '_> {
    fn size(&self) -> u64 {
        self.index.model.size()
    }

    fn read_u64(&self, offset: u64) -> u64 {
        let in_page = (offset % PAGE_SIZE) as usize;
        if in_page <= PAGE_SIZE as usize - 8 {
            if let Some(content) = self.index.page_ref(self.image, offset / PAGE_SIZE) {
                let mut b = [0u8; 8];
                b.copy_from_slice(&content[in_page..in_page + 8]);
                return u64::from_le_bytes(b);
            }
        }
        let mut b = [0u8; 8];
        self.read(offset, &mut b);
        u64::from_le_bytes(b)
    }

    fn read(&self, offset: u64, buf: &mut [u8]) {
        let in_page = (offset % PAGE_SIZE) as usize;
        if in_page + buf.len() <= PAGE_SIZE as usize {
            // The common case: a read inside one page.
            if let Some(content) = self.index.page_ref(self.image, offset / PAGE_SIZE) {
                buf.copy_from_slice(&content[in_page..in_page + buf.len()]);
                return;
            }
        }
        for PageSpan { page, in_page, range } in page_spans(offset, buf.len()) {
            let n = range.len();
            match self.index.page_ref(self.image, page) {
                Some(content) => buf[range].copy_from_slice(&content[in_page..in_page + n]),
                None => {
                    let mut tmp = [0u8; PAGE_SIZE as usize];
                    self.index.read_page(self.image, page, &mut tmp);
                    buf[range].copy_from_slice(&tmp[in_page..in_page + n]);
                }
            }
        }
    }
}

impl Default for DenseImage {
    fn default() -> Self {
        DenseImage::durable(0, TearGranularity::Page4K)
    }
}
