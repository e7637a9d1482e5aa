//! Tear granularity: the unit a disk writes atomically.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The size of the units in which a page being written can persist
/// partially on a power failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TearGranularity {
    /// 8 bytes: one CPU store (what real pmem guarantees).
    #[serde(rename = "8B")]
    Store8,
    /// 64 bytes: one cache line.
    #[serde(rename = "64B")]
    CacheLine64,
    /// 512 bytes: one sector (the usual promise of a disk).
    #[default]
    #[serde(rename = "512B")]
    Sector512,
    /// 4096 bytes: the whole page (no tearing inside a page).
    #[serde(rename = "4KiB")]
    Page4K,
}

impl TearGranularity {
    /// All granularities, smallest first.
    pub const ALL: [TearGranularity; 4] =
        [TearGranularity::Store8, TearGranularity::CacheLine64, TearGranularity::Sector512, TearGranularity::Page4K];

    /// Size of a unit in bytes.
    pub fn bytes(self) -> usize {
        match self {
            TearGranularity::Store8 => 8,
            TearGranularity::CacheLine64 => 64,
            TearGranularity::Sector512 => 512,
            TearGranularity::Page4K => 4096,
        }
    }

    /// Units per 4 KiB page.
    pub fn units_per_page(self) -> usize {
        4096 / self.bytes()
    }
}

impl fmt::Display for TearGranularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TearGranularity::Store8 => "8B",
            TearGranularity::CacheLine64 => "64B",
            TearGranularity::Sector512 => "512B",
            TearGranularity::Page4K => "4KiB",
        })
    }
}

impl FromStr for TearGranularity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "8" | "8b" => Ok(TearGranularity::Store8),
            "64" | "64b" => Ok(TearGranularity::CacheLine64),
            "512" | "512b" => Ok(TearGranularity::Sector512),
            "4096" | "4k" | "4kib" | "4096b" => Ok(TearGranularity::Page4K),
            _ => Err(format!("tear granularity '{s}' is not one of 8B, 64B, 512B, 4KiB")),
        }
    }
}

/// Draws a random tear mask for one page: `units_per_page` bits, bit `i`
/// set = unit `i` reached the disk. The one place masks are drawn (the
/// page cache's power failure and every crash-image sampler use it), so a
/// seed gives the same tears everywhere.
pub fn random_mask(rng: &mut crate::rng::SimRng, g: TearGranularity) -> Vec<u64> {
    let units = g.units_per_page();
    (0..units.div_ceil(64))
        .map(|w| {
            let bits = (units - w * 64).min(64);
            let r = rng.next_u64();
            if bits == 64 {
                r
            } else {
                r & ((1u64 << bits) - 1)
            }
        })
        .collect()
}

/// Builds a page torn between `old` and `new`: unit `i` comes from `new`
/// when bit `i` of `mask` is set. `mask` holds `units_per_page` bits.
pub fn tear_page(old: &[u8], new: &[u8], g: TearGranularity, mask: &[u64]) -> Vec<u8> {
    let mut out = old.to_vec();
    tear_into(&mut out, new, g, mask);
    out
}

/// Tears `page` (holding the old content) towards `new` in place: unit `i`
/// is replaced by `new`'s when bit `i` of `mask` is set.
pub fn tear_into(page: &mut [u8], new: &[u8], g: TearGranularity, mask: &[u64]) {
    let unit = g.bytes();
    for i in 0..g.units_per_page() {
        if mask.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1) {
            page[i * unit..(i + 1) * unit].copy_from_slice(&new[i * unit..(i + 1) * unit]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_sizes() {
        for g in TearGranularity::ALL {
            assert_eq!(g.to_string().parse::<TearGranularity>().unwrap(), g);
            assert_eq!(g.bytes() * g.units_per_page(), 4096);
        }
        assert!("7B".parse::<TearGranularity>().unwrap_err().contains("8B, 64B, 512B, 4KiB"));
    }

    #[test]
    fn tearing_takes_units_from_each_side() {
        let old = vec![0u8; 4096];
        let new = vec![1u8; 4096];
        let t = tear_page(&old, &new, TearGranularity::Sector512, &[0b101]);
        assert_eq!(t[0], 1);
        assert_eq!(t[511], 1);
        assert_eq!(t[512], 0);
        assert_eq!(t[1024], 1);
        assert_eq!(t[1536], 0);
    }
}
