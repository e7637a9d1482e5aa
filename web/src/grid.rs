//! The host page-cache grid: which state every page of a device is in, laid
//! out on a pixel raster.
//!
//! Memory and time scale with the pages *touched*, never with the device
//! size: a [`PageMap`] lists only pages that have a state, and
//! [`GridRenderer::render`] fills the background once and then paints one
//! cell per touched page. When the view holds more pages than the raster
//! has pixels, a cell stands for several pages and shows the worst of them
//! (see [`CellState`]'s order), so a single lost page in a 4 GiB device is
//! still visible.

use crate::palette::CellState;
use pmem_core::event::fold::PageFold;
use pmem_core::memory::PAGE_SIZE;
use std::ops::Range;

/// The touched pages of one device and their display state, sorted by page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageMap {
    /// Pages in the device.
    pub total_pages: u64,
    /// `(page, state)` for every page that is not [`CellState::Untouched`],
    /// sorted by page, each page once.
    pub pages: Vec<(u64, CellState)>,
    /// Pages per host folio of the device's backing file (1: folios are
    /// pages).
    pub folio_pages: u64,
}

impl PageMap {
    /// The page map of device `id` as the fold of its log says: the
    /// page-cache states, and the pages the last failure lost or tore until
    /// they are written again. Empty for a device the log never added.
    pub fn of_fold(fold: &PageFold, id: &str) -> PageMap {
        let size = fold.devices().find(|d| d.0 == id).map_or(0, |d| d.1);
        let pages = fold.pages(id).map(|(p, s)| (p, CellState::from_status(s))).collect();
        PageMap { total_pages: size / PAGE_SIZE, pages, folio_pages: fold.folio_pages(id) }
    }

    /// The state of one page.
    pub fn state(&self, page: u64) -> CellState {
        match self.pages.binary_search_by_key(&page, |p| p.0) {
            Ok(i) => self.pages[i].1,
            Err(_) => CellState::Untouched,
        }
    }

    /// The touched pages in `range`.
    pub fn in_range(&self, range: Range<u64>) -> &[(u64, CellState)] {
        let lo = self.pages.partition_point(|p| p.0 < range.start);
        let hi = self.pages.partition_point(|p| p.0 < range.end);
        &self.pages[lo..hi]
    }

    /// How many pages are in each state (untouched ones included).
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for &(_, s) in &self.pages {
            c.by_state[s as usize] += 1;
        }
        c.by_state[CellState::Untouched as usize] = self.total_pages.saturating_sub(self.pages.len() as u64);
        c
    }
}

/// Pages per state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Indexed by `CellState as usize`.
    pub by_state: [u64; 9],
}

impl Counts {
    /// The count of one state.
    pub fn get(&self, s: CellState) -> u64 {
        self.by_state[s as usize]
    }

    /// A sentence for screen readers: "16384 pages: 2 dirty, 1 clean, …".
    pub fn summary(&self) -> String {
        let total: u64 = self.by_state.iter().sum();
        let parts: Vec<String> = CellState::ALL
            .iter()
            .rev()
            .filter(|s| **s != CellState::Untouched && self.get(**s) > 0)
            .map(|s| format!("{} {}", self.get(*s), s.name()))
            .collect();
        if parts.is_empty() {
            format!("{total} pages, none written yet")
        } else {
            format!("{total} pages: {}; the rest never written", parts.join(", "))
        }
    }
}

/// The part of a device shown: `span` pages from `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewport {
    /// First page shown.
    pub first: u64,
    /// Pages shown (at least 1).
    pub span: u64,
}

/// The narrowest view: 16 pages.
pub const MIN_SPAN: u64 = 16;

impl Viewport {
    /// The whole device.
    pub fn whole(total_pages: u64) -> Viewport {
        Viewport { first: 0, span: total_pages.max(1) }
    }

    /// Pages shown.
    pub fn range(&self) -> Range<u64> {
        self.first..self.first + self.span
    }

    fn clamp(first: i128, span: u64, total: u64) -> Viewport {
        let span = span.clamp(MIN_SPAN.min(total.max(1)), total.max(1));
        let max_first = i128::from(total.saturating_sub(span));
        Viewport { first: first.clamp(0, max_first) as u64, span }
    }

    /// Zooms in four times around `page`.
    pub fn zoom_in(&self, page: u64, total: u64) -> Viewport {
        let span = (self.span / 4).max(1);
        Viewport::clamp(i128::from(page) - i128::from(span / 2), span, total)
    }

    /// Zooms out four times around `page`.
    pub fn zoom_out(&self, page: u64, total: u64) -> Viewport {
        let span = self.span.saturating_mul(4);
        Viewport::clamp(i128::from(page) - i128::from(span / 2), span, total)
    }

    /// Moves by `delta` pages.
    pub fn pan(&self, delta: i64, total: u64) -> Viewport {
        Viewport::clamp(i128::from(self.first) + i128::from(delta), self.span, total)
    }
}

/// The smallest cell side the grid fits the written pages with, in
/// pixels (one written page of a 64 MiB device is a visible square, not a
/// speck).
pub const MIN_FIT_CELL_PX: u32 = 8;

impl Viewport {
    /// The view that fits the pages `touched` (first and last written
    /// page, and the selection) of a device of `total` pages on a raster of
    /// `width` × `height` pixels: the whole device when it fits with cells
    /// of at least [`MIN_FIT_CELL_PX`], else as many pages as fit at that
    /// size, centred on the touched range (or exactly the touched range
    /// when it is wider than that).
    pub fn fit(touched: Option<(u64, u64)>, total: u64, width: u32, height: u32) -> Viewport {
        let total = total.max(1);
        let at_min = u64::from(width / MIN_FIT_CELL_PX).max(1) * u64::from(height / MIN_FIT_CELL_PX).max(1);
        let Some((lo, hi)) = touched.filter(|_| total > at_min) else { return Viewport::whole(total) };
        let (lo, hi) = (lo.min(hi), hi.max(lo).min(total - 1));
        let needed = hi - lo + 1;
        if needed > at_min {
            return Viewport::clamp(i128::from(lo), needed, total);
        }
        let span = at_min.max(MIN_SPAN);
        Viewport::clamp(i128::from(lo) + i128::from(needed / 2) - i128::from(span / 2), span, total)
    }
}

/// Host pages per host folio: the unit in which the host page cache
/// dirties and writes back the backing file (1 = every page on its own), as
/// the log's `device_added` event recorded it.
pub fn folio_pages(map: &PageMap) -> u64 {
    map.folio_pages.max(1)
}

/// How a viewport is laid out on a raster of `width` × `height` pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridLayout {
    /// Raster width in pixels.
    pub width: u32,
    /// Raster height in pixels.
    pub height: u32,
    /// Cells per row.
    pub cols: u32,
    /// Rows used.
    pub rows: u32,
    /// Side of a cell in pixels.
    pub cell_px: u32,
    /// Pages per cell (1 when zoomed in far enough).
    pub pages_per_cell: u64,
}

/// Largest cell side, in pixels.
pub const MAX_CELL_PX: u32 = 40;

impl GridLayout {
    /// The layout of `span` pages on `width` × `height` pixels.
    pub fn new(span: u64, width: u32, height: u32) -> GridLayout {
        let (w, h) = (width.max(1), height.max(1));
        let area = u64::from(w) * u64::from(h);
        let span = span.max(1);
        if span >= area {
            let ppc = span.div_ceil(area);
            let cells = span.div_ceil(ppc);
            let rows = cells.div_ceil(u64::from(w)).min(u64::from(h)) as u32;
            return GridLayout { width: w, height: h, cols: w, rows, cell_px: 1, pages_per_cell: ppc };
        }
        let mut s = ((area / span) as f64).sqrt().floor() as u32;
        s = s.clamp(1, MAX_CELL_PX);
        loop {
            let cols = (w / s).max(1);
            let rows = span.div_ceil(u64::from(cols));
            if rows <= u64::from(h / s) || s == 1 {
                return GridLayout { width: w, height: h, cols, rows: rows as u32, cell_px: s, pages_per_cell: 1 };
            }
            s -= 1;
        }
    }

    /// Cells used.
    pub fn cells(&self, span: u64) -> u64 {
        span.div_ceil(self.pages_per_cell)
    }

    /// The cell holding `page`, if shown.
    pub fn cell_of(&self, vp: &Viewport, page: u64) -> Option<u64> {
        if !vp.range().contains(&page) {
            return None;
        }
        Some((page - vp.first) / self.pages_per_cell)
    }

    /// The pages of a cell.
    pub fn pages_of_cell(&self, vp: &Viewport, cell: u64) -> Range<u64> {
        let start = vp.first + cell * self.pages_per_cell;
        let end = (start + self.pages_per_cell).min(vp.first + vp.span);
        start.min(end)..end
    }

    /// The cell under pixel `(x, y)`, if any.
    pub fn cell_at(&self, vp: &Viewport, x: f64, y: f64) -> Option<u64> {
        if x < 0.0 || y < 0.0 {
            return None;
        }
        let col = (x as u32) / self.cell_px;
        let row = (y as u32) / self.cell_px;
        if col >= self.cols || row >= self.rows {
            return None;
        }
        let cell = u64::from(row) * u64::from(self.cols) + u64::from(col);
        (cell < self.cells(vp.span)).then_some(cell)
    }

    /// Top-left pixel of a cell.
    pub fn cell_origin(&self, cell: u64) -> (u32, u32) {
        let col = (cell % u64::from(self.cols)) as u32;
        let row = (cell / u64::from(self.cols)) as u32;
        (col * self.cell_px, row * self.cell_px)
    }
}

/// Background outside the device.
const BACKGROUND: [u8; 3] = [0xff, 0xff, 0xff];
/// Outline of the selected cell (and folio boundaries).
const SELECTION: [u8; 3] = [0x00, 0x00, 0x00];
/// The cross on a lost page and the line on a torn one.
const LOSS_MARK: [u8; 3] = [0xff, 0xff, 0xff];

/// Paints page maps into an RGBA buffer, reusing its allocations.
#[derive(Clone, Debug, Default)]
pub struct GridRenderer {
    rgba: Vec<u8>,
    cells: Vec<u8>,
    touched: Vec<u32>,
    folio: u64,
}

impl GridRenderer {
    /// A renderer with no buffer yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Draws host folio boundaries every `pages` pages (1: none); see
    /// [`folio_pages`].
    pub fn set_folio_pages(&mut self, pages: u64) {
        self.folio = pages;
    }

    /// The RGBA pixels of the last render (`width * height * 4` bytes).
    pub fn rgba(&self) -> &[u8] {
        &self.rgba
    }

    /// Paints the pages of `map` shown by `vp` with `layout`; outlines the
    /// cell of `selected`. Returns the number of cells painted in a state
    /// other than untouched. Work: the raster once, plus one cell per
    /// touched page in view.
    pub fn render(&mut self, map: &PageMap, vp: &Viewport, layout: &GridLayout, selected: Option<u64>) -> usize {
        let (w, h) = (layout.width as usize, layout.height as usize);
        self.rgba.resize(w * h * 4, 0);
        fill(&mut self.rgba, 0, w * h, BACKGROUND);
        let cells = layout.cells(vp.span) as usize;
        self.cells.resize(cells, 0);
        self.touched.clear();
        // Untouched background for every cell in the view.
        if layout.cell_px == 1 {
            let full_rows = cells / w;
            fill(&mut self.rgba, 0, full_rows * w, CellState::Untouched.rgb());
            fill(&mut self.rgba, full_rows * w, cells % w, CellState::Untouched.rgb());
        } else {
            for cell in 0..cells as u64 {
                self.paint_cell(layout, cell, CellState::Untouched.rgb());
            }
        }
        // Worst state per cell, touched pages only.
        for &(page, state) in map.in_range(vp.range()) {
            let cell = ((page - vp.first) / layout.pages_per_cell) as usize;
            let slot = &mut self.cells[cell];
            if *slot == 0 {
                self.touched.push(cell as u32);
            }
            if state as u8 > *slot {
                *slot = state as u8;
            }
        }
        let touched = std::mem::take(&mut self.touched);
        for &cell in &touched {
            let state = CellState::from_index(self.cells[cell as usize]);
            self.cells[cell as usize] = 0;
            self.paint_cell(layout, u64::from(cell), state.rgb());
            if matches!(state, CellState::Lost | CellState::Torn) {
                self.mark_loss(layout, u64::from(cell), state == CellState::Lost);
            }
        }
        let painted = touched.len();
        self.touched = touched;
        if self.folio > 1 && layout.pages_per_cell == 1 && layout.cell_px >= 4 {
            self.folio_lines(vp, layout);
        }
        if let Some(cell) = selected.and_then(|p| layout.cell_of(vp, p)) {
            self.outline_cell(layout, cell);
        }
        painted
    }

    fn paint_cell(&mut self, layout: &GridLayout, cell: u64, rgb: [u8; 3]) {
        let (x0, y0) = layout.cell_origin(cell);
        let s = layout.cell_px;
        let inner = if s >= 4 { s - 1 } else { s };
        let w = layout.width as usize;
        for y in y0..(y0 + inner).min(layout.height) {
            let start = y as usize * w + x0 as usize;
            let len = (inner.min(layout.width - x0)) as usize;
            fill(&mut self.rgba, start, len, rgb);
        }
    }

    /// Draws loss on a cell large enough to hold it: a cross for a lost
    /// page, one diagonal (the tear) for a torn one.
    fn mark_loss(&mut self, layout: &GridLayout, cell: u64, lost: bool) {
        let s = layout.cell_px;
        if s < 6 {
            return;
        }
        let (x0, y0) = layout.cell_origin(cell);
        let w = layout.width as usize;
        let inner = s - 1;
        for i in 1..inner.saturating_sub(1) {
            let (x, y) = (x0 + i, y0 + inner - 1 - i);
            if x < layout.width && y < layout.height {
                fill(&mut self.rgba, y as usize * w + x as usize, 1, LOSS_MARK);
            }
            let y = y0 + i;
            if lost && x < layout.width && y < layout.height {
                fill(&mut self.rgba, y as usize * w + x as usize, 1, LOSS_MARK);
            }
        }
    }

    /// A dark line on the left of every cell that starts a host folio.
    fn folio_lines(&mut self, vp: &Viewport, layout: &GridLayout) {
        let w = layout.width as usize;
        let first = vp.first.div_ceil(self.folio) * self.folio;
        for page in (first..vp.first + vp.span).step_by(self.folio as usize) {
            let Some(cell) = layout.cell_of(vp, page) else { continue };
            let (x, y0) = layout.cell_origin(cell);
            for y in y0..(y0 + layout.cell_px).min(layout.height) {
                fill(&mut self.rgba, y as usize * w + x as usize, 1, SELECTION);
            }
        }
    }

    fn outline_cell(&mut self, layout: &GridLayout, cell: u64) {
        let (x0, y0) = layout.cell_origin(cell);
        let s = layout.cell_px.max(1);
        // A frame two pixels outside small cells, on the cell for big ones.
        let pad = if s >= 4 { 0 } else { 2 };
        let x_lo = x0.saturating_sub(pad);
        let y_lo = y0.saturating_sub(pad);
        let x_hi = (x0 + s + pad).min(layout.width) - 1;
        let y_hi = (y0 + s + pad).min(layout.height) - 1;
        let w = layout.width as usize;
        for x in x_lo..=x_hi {
            fill(&mut self.rgba, y_lo as usize * w + x as usize, 1, SELECTION);
            fill(&mut self.rgba, y_hi as usize * w + x as usize, 1, SELECTION);
        }
        for y in y_lo..=y_hi {
            fill(&mut self.rgba, y as usize * w + x_lo as usize, 1, SELECTION);
            fill(&mut self.rgba, y as usize * w + x_hi as usize, 1, SELECTION);
        }
    }
}

/// Sets `len` pixels from pixel `start` to `rgb` (opaque).
fn fill(rgba: &mut [u8], start: usize, len: usize, rgb: [u8; 3]) {
    let px = [rgb[0], rgb[1], rgb[2], 0xff];
    let end = ((start + len) * 4).min(rgba.len());
    let begin = (start * 4).min(end);
    for chunk in rgba[begin..end].chunks_exact_mut(4) {
        chunk.copy_from_slice(&px);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::event::fold::Tracking;
    use pmem_core::event::CrashKind;
    use pmem_core::sim::{DeviceSpec, Machine, SimConfig};

    fn machine(size: u64) -> Machine {
        let mut m = Machine::new(SimConfig::default());
        m.add_device(DeviceSpec::new("nv1", size)).unwrap();
        m
    }

    fn map(m: &Machine) -> PageMap {
        let mut fold = PageFold::new(Tracking::States);
        fold.advance(m.log().events());
        PageMap::of_fold(&fold, "nv1")
    }

    #[test]
    fn a_write_makes_its_page_dirty_and_a_flush_makes_it_clean() {
        let mut m = machine(64 << 20);
        m.guest_write("nv1", 5 * PAGE_SIZE + 10, b"hello").unwrap();
        let map1 = map(&m);
        assert_eq!(map1.state(5), CellState::Dirty);
        assert_eq!(map1.state(4), CellState::Untouched);
        assert_eq!(map1.counts().get(CellState::Dirty), 1);
        assert_eq!(map1.counts().get(CellState::Untouched), map1.total_pages - 1);
        let r = m.flush("nv1").unwrap();
        while m.flush_result("nv1", r).unwrap().is_none() && m.step() {}
        assert_eq!(map(&m).state(5), CellState::Clean);
    }

    #[test]
    fn a_power_failure_marks_unflushed_pages_lost_until_rewritten() {
        let mut m = machine(1 << 20);
        m.guest_write("nv1", 0, b"x").unwrap();
        m.crash(CrashKind::PowerFailure).unwrap();
        let lost = map(&m);
        assert_eq!(lost.state(0), CellState::Lost, "{lost:?}");
        assert!(lost.counts().summary().contains("1 lost"), "{}", lost.counts().summary());
        m.guest_write("nv1", 0, b"y").unwrap();
        assert_eq!(map(&m).state(0), CellState::Dirty);
    }

    #[test]
    fn a_guest_crash_loses_nothing() {
        let mut m = machine(1 << 20);
        m.guest_write("nv1", 0, b"x").unwrap();
        m.crash(CrashKind::GuestCrash).unwrap();
        assert_eq!(map(&m).state(0), CellState::Dirty);
    }

    #[test]
    fn layout_of_a_million_pages_aggregates_and_of_a_few_zooms() {
        let big = GridLayout::new(1 << 20, 768, 384);
        assert_eq!(big.cell_px, 1);
        assert_eq!(big.pages_per_cell, 4);
        assert!(big.cells(1 << 20) <= 768 * 384);
        let small = GridLayout::new(64, 768, 384);
        assert_eq!(small.pages_per_cell, 1);
        assert!(small.cell_px > 1);
        assert!(u64::from(small.cols) * u64::from(small.rows) >= 64);
        assert!(small.rows * small.cell_px <= 384);
        for span in [1u64, 7, 100, 1000, 10_000, 294_912, 294_913, 1 << 20, 1 << 32] {
            let l = GridLayout::new(span, 768, 384);
            assert!(l.rows * l.cell_px <= 384 && l.cols * l.cell_px <= 768, "{span}: {l:?}");
            assert!(l.cells(span) <= u64::from(l.cols) * u64::from(l.rows), "{span}: {l:?}");
        }
    }

    #[test]
    fn a_lost_page_is_visible_in_a_fully_zoomed_out_4_gib_device() {
        let total = (4u64 << 30) / PAGE_SIZE;
        let map = PageMap {
            total_pages: total,
            pages: vec![(10, CellState::Clean), (11, CellState::Lost), (total - 1, CellState::Dirty)],
            folio_pages: 1,
        };
        let vp = Viewport::whole(total);
        let layout = GridLayout::new(vp.span, 768, 384);
        let mut r = GridRenderer::new();
        assert_eq!(r.render(&map, &vp, &layout, None), 2);
        let px = |cell: u64| {
            let (x, y) = layout.cell_origin(cell);
            let i = (y as usize * 768 + x as usize) * 4;
            [r.rgba()[i], r.rgba()[i + 1], r.rgba()[i + 2]]
        };
        assert_eq!(px(layout.cell_of(&vp, 11).unwrap()), CellState::Lost.rgb());
        assert_eq!(px(layout.cell_of(&vp, total - 1).unwrap()), CellState::Dirty.rgb());
        assert_eq!(px(layout.cell_of(&vp, 5000).unwrap()), CellState::Untouched.rgb());
        // Painting again reuses the buffers and gives the same pixels.
        let before = r.rgba().to_vec();
        r.render(&map, &vp, &layout, None);
        assert_eq!(before, r.rgba());
    }

    #[test]
    fn hit_testing_finds_the_page_drawn_there() {
        let vp = Viewport { first: 100, span: 64 };
        let layout = GridLayout::new(vp.span, 768, 384);
        for page in [100, 117, 163] {
            let cell = layout.cell_of(&vp, page).unwrap();
            let (x, y) = layout.cell_origin(cell);
            let hit = layout.cell_at(&vp, f64::from(x) + 0.5, f64::from(y) + 0.5).unwrap();
            assert_eq!(layout.pages_of_cell(&vp, hit), page..page + 1);
        }
        assert_eq!(layout.cell_at(&vp, 767.0, 383.0), None);
    }

    #[test]
    fn zoom_and_pan_stay_inside_the_device() {
        let total = 1 << 20;
        let vp = Viewport::whole(total);
        let z = vp.zoom_in(10, total);
        assert_eq!(z.first, 0);
        assert_eq!(z.span, total / 4);
        let deep = (0..20).fold(vp, |v, _| v.zoom_in(total - 1, total));
        assert_eq!(deep.span, MIN_SPAN);
        assert_eq!(deep.first + deep.span, total);
        assert_eq!(deep.pan(1000, total).first, total - MIN_SPAN);
        assert_eq!(deep.zoom_out(0, total).span, MIN_SPAN * 4);
        let tiny = Viewport::whole(4);
        assert_eq!(tiny.zoom_in(0, 4).span, 4);
    }

    #[test]
    fn one_written_page_of_64_mib_fits_with_visible_cells() {
        let total = (64u64 << 20) / PAGE_SIZE;
        for (w, h) in [(768, 384), (1800, 560), (700, 420)] {
            let vp = Viewport::fit(Some((5000, 5000)), total, w, h);
            let l = GridLayout::new(vp.span, w, h);
            assert!(vp.range().contains(&5000), "{vp:?}");
            assert!(l.cell_px >= MIN_FIT_CELL_PX, "{w}x{h}: {l:?} {vp:?}");
        }
        // Nothing written: the whole device. A small device: whole too.
        assert_eq!(Viewport::fit(None, total, 768, 384), Viewport::whole(total));
        assert_eq!(Viewport::fit(Some((3, 3)), 64, 768, 384), Viewport::whole(64));
        // A touched range wider than fits at 8 px: exactly that range.
        let wide = Viewport::fit(Some((100, 10_099)), total, 768, 384);
        assert_eq!((wide.first, wide.span), (100, 10_000));
        // At the end of the device the view stays inside it.
        let end = Viewport::fit(Some((total - 1, total - 1)), total, 768, 384);
        assert_eq!(end.first + end.span, total);
    }

    #[test]
    fn loss_is_drawn_on_the_cell_and_folios_get_boundaries() {
        let map = PageMap {
            total_pages: 64,
            pages: vec![(1, CellState::Lost), (2, CellState::Torn), (3, CellState::Dirty)],
            folio_pages: 1,
        };
        let vp = Viewport::whole(64);
        let layout = GridLayout::new(64, 768, 384);
        assert!(layout.cell_px >= 6);
        let mut r = GridRenderer::new();
        r.render(&map, &vp, &layout, None);
        let whites = |r: &GridRenderer, page: u64| {
            let (x0, y0) = layout.cell_origin(layout.cell_of(&vp, page).unwrap());
            (y0..y0 + layout.cell_px - 1)
                .flat_map(|y| (x0..x0 + layout.cell_px - 1).map(move |x| (x, y)))
                .filter(|(x, y)| {
                    let i = (*y as usize * 768 + *x as usize) * 4;
                    r.rgba()[i..i + 3] == LOSS_MARK
                })
                .count()
        };
        let (lost, torn, dirty) = (whites(&r, 1), whites(&r, 2), whites(&r, 3));
        assert!(lost > torn && torn > 0 && dirty == 0, "{lost} {torn} {dirty}");
        // Folios of 4 pages: a dark line at the left of page 4, none at page 5.
        let dark_left = |r: &GridRenderer, page: u64| {
            let (x, y) = layout.cell_origin(layout.cell_of(&vp, page).unwrap());
            let i = ((y + 2) as usize * 768 + x as usize) * 4;
            r.rgba()[i..i + 3] == SELECTION
        };
        assert!(!dark_left(&r, 4));
        r.set_folio_pages(4);
        r.render(&map, &vp, &layout, None);
        assert!(dark_left(&r, 4) && dark_left(&r, 8) && !dark_left(&r, 5));
        assert_eq!(folio_pages(&map), 1);
    }
}
