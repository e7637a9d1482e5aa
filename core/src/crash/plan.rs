//! Planning the images of one crash point: exhaustive or sampled, torn
//! samples, a shard's share, deduplication — lazily, one image at a time.
//!
//! Image `n` of a point is a pure function of the campaign's seed, the
//! point and `n`, so a plan never holds the list: an engine takes images a
//! batch at a time, a shard takes every `shard_n`-th, and a resumed
//! campaign gets the same images again.
//!
//! The enumeration order, for a point with pending pages `p_0 < p_1 < …`
//! where page `p_i` has `c_i` candidates:
//! - **exhaustive** when `∏(c_i + 1) ≤ exhaustive_limit`: image `n` takes
//!   version `n mod (c_0+1)` of `p_0`, and so on in mixed radix;
//! - otherwise **sampled**: image `s` draws each page's version uniformly
//!   from `0..=c_i` with the generator `sample/<point>/<s>`;
//! - then, below 4 KiB tear granularity, **torn samples**: with generator
//!   `torn/<point>/<s>`, one page is torn for sure (a version ≥ 1 with a
//!   random mask), every other page draws a version and is torn with
//!   probability 1/4.
//!
//! With host folios larger than a page ([`DurabilityModel::folio_pages`]),
//! the unit of choice is a folio, not a page: the host writes a folio back
//! as one snapshot, so the pending pages of one folio reach the disk at one
//! *cut* of the folio's writes — every page its newest version written at or
//! before the cut. A folio whose pending writes have `k` distinct write
//! indices has `k + 1` choices (the durable one, then each cut); the order
//! above is the same with folios for pages (and is exactly it when folios
//! are pages). A torn folio tears each of its written pages on its own.
//!
//! [`DurabilityModel::folio_pages`]: crate::durability::DurabilityModel::folio_pages

use super::index::{DenseImage, PointIndex};
use crate::host::tear::{random_mask, TearGranularity};
use crate::rng::{fnv1a64, SimRng};
use std::collections::HashSet;

/// The knobs a plan needs (a part of the campaign's configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanConfig {
    /// Seed of the samples.
    pub seed: u64,
    /// Largest number of untorn images enumerated exhaustively.
    pub exhaustive_limit: u64,
    /// Images sampled at a point with more.
    pub samples_per_point: u64,
    /// Tear granularity.
    pub tear: TearGranularity,
    /// Torn images sampled per point.
    pub torn_samples_per_point: u64,
    /// Shard `(i, n)`: image `k` belongs to shard `k mod n`.
    pub shard: (u64, u64),
}

/// The pending pages of one folio (one page unless folios are larger) and
/// the cuts of its writes.
struct Unit {
    slots: std::ops::Range<usize>,
    /// Distinct write indices of the unit's candidates, ascending; choice
    /// `k ≥ 1` takes the writes up to `cuts[k - 1]`.
    cuts: Vec<usize>,
}

/// The units of a point: runs of slots in one folio (slots are in page
/// order).
fn units(index: &PointIndex<'_>, folio_pages: u64) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::new();
    for slot in 0..index.len() {
        let folio = index.page(slot) / folio_pages;
        let same = out.last().is_some_and(|u| index.page(u.slots.start) / folio_pages == folio);
        if !same {
            out.push(Unit { slots: slot..slot, cuts: Vec::new() });
        }
        if let Some(u) = out.last_mut() {
            u.slots.end = slot + 1;
            u.cuts.extend(index.candidates(slot).iter().map(|v| v.write));
        }
    }
    for u in &mut out {
        u.cuts.sort_unstable();
        u.cuts.dedup();
    }
    out
}

/// The images of one crash point (see the module docs).
pub struct PointPlan<'a> {
    index: PointIndex<'a>,
    cfg: PlanConfig,
    units: Vec<Unit>,
    radices: Vec<u64>,
    untorn: u64,
    torn: u64,
    exhaustive: bool,
}

/// An image a shard must check.
#[derive(Clone, Debug)]
pub struct PlannedImage {
    /// Its position in the point's enumeration.
    pub n: u64,
    /// The image.
    pub image: DenseImage,
}

impl<'a> PointPlan<'a> {
    /// Plans the images of the point `index` describes.
    pub fn new(index: PointIndex<'a>, cfg: PlanConfig) -> Self {
        let units = units(&index, index.folio_pages());
        let radices: Vec<u64> = units.iter().map(|u| u.cuts.len() as u64 + 1).collect();
        let total = radices.iter().try_fold(1u64, |acc, &r| acc.checked_mul(r));
        let exhaustive = total.is_some_and(|t| t <= cfg.exhaustive_limit);
        let untorn = if exhaustive { total.unwrap_or(1) } else { cfg.samples_per_point };
        let torn =
            if cfg.tear != TearGranularity::Page4K && !index.is_empty() { cfg.torn_samples_per_point } else { 0 };
        PointPlan { index, cfg, units, radices, untorn, torn, exhaustive }
    }

    /// The point's index (to read the images through).
    pub fn index(&self) -> &PointIndex<'a> {
        &self.index
    }

    /// True when the point is enumerated exhaustively.
    pub fn exhaustive(&self) -> bool {
        self.exhaustive
    }

    /// Images in the point's enumeration (all shards, duplicates included).
    pub fn total(&self) -> u64 {
        self.untorn.saturating_add(self.torn)
    }

    /// Images of the enumeration that belong to this plan's shard.
    pub fn shard_total(&self) -> u64 {
        shard_share(self.total(), self.cfg.shard)
    }

    /// Image `n` of the enumeration.
    pub fn image(&self, n: u64) -> DenseImage {
        let point = self.index.point().index;
        if n < self.untorn {
            if self.exhaustive {
                self.decode(n)
            } else {
                let mut rng = SimRng::new(self.cfg.seed).derive(&format!("sample/{point}/{n}"));
                let mut img = DenseImage::durable(self.index.len(), self.cfg.tear);
                for (u, &r) in self.radices.iter().enumerate() {
                    self.choose(&mut img, u, rng.below(r));
                }
                img
            }
        } else {
            self.torn_sample(n - self.untorn)
        }
    }

    fn decode(&self, mut n: u64) -> DenseImage {
        let mut img = DenseImage::durable(self.index.len(), self.cfg.tear);
        for (u, &r) in self.radices.iter().enumerate() {
            self.choose(&mut img, u, n % r);
            n /= r;
        }
        img
    }

    /// Sets unit `u` of `img` to choice `k`: 0 the durable content, `k ≥ 1`
    /// every slot's newest candidate written at or before the unit's `k`-th
    /// cut (for a page: its `k`-th candidate).
    fn choose(&self, img: &mut DenseImage, u: usize, k: u64) {
        let unit = &self.units[u];
        if k == 0 {
            return;
        }
        let cut = unit.cuts[(k - 1) as usize];
        for slot in unit.slots.clone() {
            img.versions[slot] = self.index.candidates(slot).partition_point(|v| v.write <= cut) as u32;
        }
    }

    fn torn_sample(&self, s: u64) -> DenseImage {
        let point = self.index.point().index;
        let mut rng = SimRng::new(self.cfg.seed).derive(&format!("torn/{point}/{s}"));
        let mut img = DenseImage::durable(self.index.len(), self.cfg.tear);
        let torn_at = rng.below(self.radices.len() as u64) as usize;
        for (u, &r) in self.radices.iter().enumerate() {
            let v = if u == torn_at { rng.range_inclusive(1, r - 1) } else { rng.below(r) };
            if v == 0 {
                continue;
            }
            self.choose(&mut img, u, v);
            if u == torn_at || rng.chance(1, 4) {
                for slot in self.units[u].slots.clone().filter(|&s| img.versions[s] > 0) {
                    img.torn.push((slot as u32, random_mask(&mut rng, self.cfg.tear)));
                }
            }
        }
        img
    }

    /// A content fingerprint of an image: pages equal to their durable
    /// content do not count, so two images that hold the same bytes have
    /// the same fingerprint.
    pub fn fingerprint(&self, image: &DenseImage) -> u64 {
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut torn = image.torn.iter().peekable();
        for (slot, &v) in image.versions.iter().enumerate() {
            let mask = match torn.peek() {
                Some((s, _)) if *s as usize == slot => torn.next().map(|(_, m)| m),
                _ => None,
            };
            if v == 0 {
                continue;
            }
            let content = match mask {
                None => self.index.version_hash(slot, v),
                Some(_) => fnv1a64(&self.index.view(image).page(self.index.page(slot))),
            };
            if content != self.index.base_hash(slot) {
                h = mix(h ^ self.index.page(slot));
                h = mix(h ^ content);
            }
        }
        h
    }

    /// The images this plan's shard must check, without duplicates, one at
    /// a time; the duplicates skipped are counted in [`ShardImages::duplicates`].
    ///
    /// Duplicates are judged over the whole enumeration, not the shard's
    /// share: image `k` is this shard's when `k mod n = i`, and it is checked
    /// when no earlier image of the point (in any shard) holds the same
    /// bytes. So the shards of a campaign check exactly the images one run
    /// checks, each once, and their reports merge into that run's.
    pub fn shard_images(&self) -> ShardImages<'_, 'a> {
        let (i, n) = (self.cfg.shard.0, self.cfg.shard.1.max(1));
        ShardImages { plan: self, next: 0, shard: (i, n), seen: HashSet::new(), duplicates: 0 }
    }
}

/// The deduplicated images of one shard at one point (an iterator).
pub struct ShardImages<'p, 'a> {
    plan: &'p PointPlan<'a>,
    next: u64,
    shard: (u64, u64),
    seen: HashSet<u64>,
    /// Images skipped so far as duplicates of one already given.
    pub duplicates: u64,
}

impl Iterator for ShardImages<'_, '_> {
    type Item = PlannedImage;

    fn next(&mut self) -> Option<PlannedImage> {
        let (i, step) = self.shard;
        while self.next < self.plan.total() {
            let n = self.next;
            self.next = n + 1;
            let image = self.plan.image(n);
            let fresh = self.seen.insert(self.plan.fingerprint(&image));
            if n % step != i {
                continue;
            }
            if fresh {
                return Some(PlannedImage { n, image });
            }
            self.duplicates += 1;
        }
        None
    }
}

/// Images a shard `(i, n)` takes of `count`.
pub fn shard_share(count: u64, (i, n): (u64, u64)) -> u64 {
    let n = n.max(1);
    if i >= count {
        0
    } else {
        (count - i).div_ceil(n)
    }
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
