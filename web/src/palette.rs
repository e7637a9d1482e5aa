//! The display states of a host page and their colours.
//!
//! The colours are the Okabe-Ito palette (Okabe & Ito, *Color Universal
//! Design*, 2008), chosen to stay distinguishable with the common forms of
//! colour blindness; every state also has a name and a one-letter code, so
//! the grid is never read by colour alone.

use pmem_core::event::fold::PageStatus;

/// What the grid shows for one page (or the worst page of a cell).
///
/// The order is the priority used when several pages share one pixel:
/// a later variant wins, so a lost or torn page is never hidden by clean
/// neighbours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum CellState {
    /// Never written: zero on disk and not cached.
    Untouched = 0,
    /// On disk, not in the host page cache (evicted, or read back after a
    /// crash).
    OnDisk,
    /// In the page cache and equal to the disk.
    Clean,
    /// Being written to disk.
    Writeback,
    /// Being written and dirtied again meanwhile.
    WritebackDirty,
    /// In the page cache, newer than the disk: lost on a power failure.
    Dirty,
    /// Marked clean after a failed writeback: the disk does not hold it
    /// ("fsyncgate").
    CleanNotDurable,
    /// The last power failure caught it under writeback: part old, part new.
    Torn,
    /// Its newest content was lost in the last failure.
    Lost,
}

impl CellState {
    /// Every state, in priority order.
    pub const ALL: [CellState; 9] = [
        CellState::Untouched,
        CellState::OnDisk,
        CellState::Clean,
        CellState::Writeback,
        CellState::WritebackDirty,
        CellState::Dirty,
        CellState::CleanNotDurable,
        CellState::Torn,
        CellState::Lost,
    ];

    /// The display state of a page as the log's fold tells it.
    pub fn from_status(s: PageStatus) -> CellState {
        match s {
            PageStatus::OnDisk => CellState::OnDisk,
            PageStatus::Clean => CellState::Clean,
            PageStatus::Writeback => CellState::Writeback,
            PageStatus::WritebackDirty => CellState::WritebackDirty,
            PageStatus::Dirty => CellState::Dirty,
            PageStatus::CleanNotDurable => CellState::CleanNotDurable,
            PageStatus::Torn => CellState::Torn,
            PageStatus::Lost => CellState::Lost,
        }
    }

    /// The state with this discriminant.
    pub fn from_index(i: u8) -> CellState {
        CellState::ALL.get(usize::from(i)).copied().unwrap_or(CellState::Untouched)
    }

    /// A short name, as shown in the legend and the text view.
    pub fn name(self) -> &'static str {
        match self {
            CellState::Untouched => "never written",
            CellState::OnDisk => "on disk (not cached)",
            CellState::Clean => "clean",
            CellState::Writeback => "under writeback",
            CellState::WritebackDirty => "writeback, dirty again",
            CellState::Dirty => "dirty",
            CellState::CleanNotDurable => "clean, NOT durable",
            CellState::Torn => "torn",
            CellState::Lost => "lost",
        }
    }

    /// A stable machine-readable key (CSS classes, tests, URLs).
    pub fn key(self) -> &'static str {
        match self {
            CellState::Untouched => "untouched",
            CellState::OnDisk => "on-disk",
            CellState::Clean => "clean",
            CellState::Writeback => "writeback",
            CellState::WritebackDirty => "writeback-dirty",
            CellState::Dirty => "dirty",
            CellState::CleanNotDurable => "clean-not-durable",
            CellState::Torn => "torn",
            CellState::Lost => "lost",
        }
    }

    /// What the state means, in a sentence (legend tooltips).
    pub fn meaning(self) -> &'static str {
        match self {
            CellState::Untouched => "never written: zeros on disk, nothing cached",
            CellState::OnDisk => "durable on the host's disk, not in its page cache",
            CellState::Clean => "in the host page cache and equal to the disk: durable",
            CellState::Writeback => "being written to disk: may tear on a power failure",
            CellState::WritebackDirty => "being written, and written again by the guest meanwhile",
            CellState::Dirty => "newer in the host page cache than on disk: lost on a power failure",
            CellState::CleanNotDurable => "writeback failed and the page was marked clean anyway (fsyncgate)",
            CellState::Torn => "the last power failure left it part old, part new",
            CellState::Lost => "the last failure lost its newest content",
        }
    }

    /// The colour, `#rrggbb` (Okabe-Ito, plus a light grey for untouched).
    pub fn css_color(self) -> &'static str {
        let [r, g, b] = self.rgb();
        // Formatting would allocate; the table is small.
        match (r, g, b) {
            (0xe8, 0xe8, 0xe8) => "#e8e8e8",
            (0x00, 0x72, 0xb2) => "#0072b2",
            (0x00, 0x9e, 0x73) => "#009e73",
            (0x56, 0xb4, 0xe9) => "#56b4e9",
            (0xf0, 0xe4, 0x42) => "#f0e442",
            (0xe6, 0x9f, 0x00) => "#e69f00",
            (0xcc, 0x79, 0xa7) => "#cc79a7",
            (0xd5, 0x5e, 0x00) => "#d55e00",
            _ => "#000000",
        }
    }

    /// The colour as RGB bytes.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            CellState::Untouched => [0xe8, 0xe8, 0xe8],
            CellState::OnDisk => [0x00, 0x72, 0xb2],          // blue
            CellState::Clean => [0x00, 0x9e, 0x73],           // bluish green
            CellState::Writeback => [0x56, 0xb4, 0xe9],       // sky blue
            CellState::WritebackDirty => [0xf0, 0xe4, 0x42],  // yellow
            CellState::Dirty => [0xe6, 0x9f, 0x00],           // orange
            CellState::CleanNotDurable => [0xcc, 0x79, 0xa7], // reddish purple
            CellState::Torn => [0xd5, 0x5e, 0x00],            // vermillion
            CellState::Lost => [0x00, 0x00, 0x00],            // black
        }
    }

    /// True for the states whose newest data a power failure right now
    /// would lose (or has lost).
    pub fn at_risk(self) -> bool {
        matches!(
            self,
            CellState::Dirty
                | CellState::Writeback
                | CellState::WritebackDirty
                | CellState::CleanNotDurable
                | CellState::Torn
                | CellState::Lost
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_state_has_a_distinct_colour_key_and_name() {
        let colours: HashSet<_> = CellState::ALL.iter().map(|s| s.rgb()).collect();
        let css: HashSet<_> = CellState::ALL.iter().map(|s| s.css_color()).collect();
        let keys: HashSet<_> = CellState::ALL.iter().map(|s| s.key()).collect();
        let names: HashSet<_> = CellState::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(colours.len(), CellState::ALL.len());
        assert_eq!(css.len(), CellState::ALL.len());
        assert_eq!(keys.len(), CellState::ALL.len());
        assert_eq!(names.len(), CellState::ALL.len());
    }

    #[test]
    fn css_colour_matches_rgb() {
        for s in CellState::ALL {
            let [r, g, b] = s.rgb();
            assert_eq!(s.css_color(), format!("#{r:02x}{g:02x}{b:02x}"), "{s:?}");
        }
    }

    #[test]
    fn index_round_trips_and_priority_puts_loss_last() {
        for s in CellState::ALL {
            assert_eq!(CellState::from_index(s as u8), s);
        }
        assert!(CellState::Lost > CellState::Dirty && CellState::Dirty > CellState::Clean);
    }
}
