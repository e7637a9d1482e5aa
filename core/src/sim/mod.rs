//! The deterministic simulation: a guest with virtio-pmem devices, run in
//! logical time from one seed.
//!
//! [`Machine`] owns guest memory, the devices (device model, its split queue
//! in guest memory, and the guest driver) and an agenda of timed actions.
//! Guest operations ([`Machine::guest_write`], [`Machine::flush`], …) happen
//! at the current simulated time; [`Machine::step`] runs the next action on
//! the agenda (the device noticing a notification, a host sync finishing,
//! the guest taking an interrupt); [`Machine::run_until_idle`] and
//! [`Machine::run_for`] repeat it. Every latency is drawn from the seed's
//! named generator, so the same seed and the same operations give the same
//! event log, natively and in wasm.

mod config;
pub mod device_memory;

pub use config::{DeviceMode, DeviceSpec, SimConfig};
pub use device_memory::{DeviceMemory, DeviceMemoryConfig, MachineType, MemoryOptions, PlacementError};

use crate::device::{DeviceError, DeviceEvent, PmemConfig, PmemDevice};
use crate::durability::{DurabilityModel, Retention};
use crate::event::{CrashKind, EventKind, EventLog, HexBytes, LogRetention, RequestId};
use crate::guest::{FlushResult, PmemDriver, SLOT_BYTES};
use crate::host::{HostBackend, PageCache, PageInfo};
use crate::memory::{GuestAddress, GuestMemory, MemoryError};
use crate::pmem_window::MachineMemory;
use crate::queue::{DriverError, QueueError, SplitQueue, SplitQueueLayout};
use crate::rng::SimRng;
use crate::time::SimTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Errors of machine-level operations (user or scenario mistakes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MachineError {
    /// No device has that id.
    #[error("no device with id '{0}'")]
    UnknownDevice(String),
    /// The id is taken.
    #[error("a device with id '{0}' already exists")]
    DuplicateId(String),
    /// Hot-unplug is refused, as QEMU refuses `device_del` of virtio-pmem.
    #[error("device '{id}' cannot be removed: virtio-pmem does not support hot-unplug (QEMU: \"virtio based memory devices cannot be unplugged\")")]
    HotUnplugUnsupported {
        /// The device.
        id: String,
    },
    /// An access outside a device's region.
    #[error("access {offset:#x}+{len:#x} is outside device '{id}' of {size:#x} bytes")]
    OutsideDevice {
        /// The device.
        id: String,
        /// Offset of the access.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Size of the device.
        size: u64,
    },
    /// Guest RAM has no room for another queue.
    #[error("guest RAM has no room for the queue of device '{0}'")]
    NoRoom(String),
    /// The device needs a reset before it processes requests again.
    #[error("device '{0}' needs a reset")]
    NeedsReset(String),
    /// QEMU refuses the device's place in guest-physical memory.
    #[error("{0}")]
    Placement(#[from] PlacementError),
    /// Device configuration error.
    #[error("{0}")]
    Device(#[from] DeviceError),
    /// Guest-memory error.
    #[error("{0}")]
    Memory(#[from] MemoryError),
    /// Queue error.
    #[error("{0}")]
    Queue(#[from] QueueError),
    /// Driver error.
    #[error("{0}")]
    Driver(#[from] DriverError),
    /// `mmap(MAP_SYNC)` is refused on virtio-pmem.
    #[error("mmap(MAP_SYNC) on '{0}' fails with EOPNOTSUPP: virtio-pmem is not real persistent memory, so synchronous page faults cannot be promised; use fsync/msync")]
    MapSyncUnsupported(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    DeviceRun(usize),
    HostPoll(usize),
    GuestInterrupt(usize),
    RateLimiterTimer(usize),
}

struct DeviceSlot {
    /// Its pmem window in [`MachineMemory`].
    window: usize,
    mode: DeviceMode,
    durability: DurabilityModel,
    device: PmemDevice,
    queue: SplitQueue,
    driver: PmemDriver,
}

/// A snapshot of one device for UIs and reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSnapshot {
    /// Device configuration.
    pub config: PmemConfig,
    /// Queue layout in guest memory.
    pub layout: SplitQueueLayout,
    /// Device's next available index.
    pub next_avail: u16,
    /// Device's next used index.
    pub next_used: u16,
    /// Driver's `avail.idx`.
    pub avail_idx: u16,
    /// Free descriptors.
    pub free_descriptors: usize,
    /// Flushes in flight (driver side).
    pub in_flight: usize,
    /// Flushes parked waiting for a slot.
    pub parked: usize,
    /// Flushes waiting for a host sync (device side).
    pub waiting_for_host: usize,
    /// Device status register.
    pub status: u8,
    /// Device counters.
    pub stats: crate::device::DeviceStats,
    /// Host counters.
    pub host: crate::host::HostStats,
}

/// The simulated guest and its virtio-pmem devices.
pub struct Machine {
    cfg: SimConfig,
    now: SimTime,
    rng: SimRng,
    mem: MachineMemory,
    /// Device ids, copied into every event of the device.
    ids: Vec<crate::event::DeviceName>,
    slots: Vec<DeviceSlot>,
    log: EventLog,
    agenda: BTreeMap<(SimTime, u64), Action>,
    agenda_seq: u64,
    started: bool,
    ram_next: u64,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine").field("now", &self.now).field("devices", &self.ids).finish()
    }
}

/// The bytes of a guest store, as the caller holds them.
enum Stored<'a> {
    Borrowed(&'a [u8]),
    /// A buffer the caller hands over.
    Shared(Arc<[u8]>),
}

impl Stored<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Stored::Borrowed(d) => d,
            Stored::Shared(d) => d,
        }
    }
}

/// Reads page `page` of `b` into `buf` (zeros if it cannot be read).
fn read_page(b: &dyn HostBackend, page: u64, buf: &mut [u8]) {
    if b.read_at(page * crate::memory::PAGE_SIZE, buf).is_err() {
        buf.fill(0);
    }
}

impl Machine {
    /// A machine with no devices.
    pub fn new(cfg: SimConfig) -> Self {
        let rng = SimRng::new(cfg.seed).derive("machine");
        let mem = MachineMemory::new(GuestAddress(0), cfg.ram_size);
        let log = EventLog::with_retention(cfg.log);
        Machine {
            cfg,
            now: SimTime::ZERO,
            rng,
            mem,
            ids: Vec::new(),
            slots: Vec::new(),
            log,
            agenda: BTreeMap::new(),
            agenda_seq: 0,
            started: false,
            ram_next: 0x10_0000,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Current simulated time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The event log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Guest memory (read-only view, e.g. to draw the rings).
    pub fn memory(&self) -> &MachineMemory {
        &self.mem
    }

    /// Ids of the devices, in the order added.
    pub fn device_ids(&self) -> &[crate::event::DeviceName] {
        &self.ids
    }

    fn index(&self, id: &str) -> Result<usize, MachineError> {
        self.ids.iter().position(|d| &**d == id).ok_or_else(|| MachineError::UnknownDevice(id.to_string()))
    }

    fn schedule(&mut self, at: SimTime, action: Action) {
        self.agenda.insert((at, self.agenda_seq), action);
        self.agenda_seq += 1;
    }

    fn record(&mut self, dev: usize, kinds: Vec<EventKind>) {
        for k in kinds {
            self.record_one(dev, k);
        }
    }

    fn record_one(&mut self, dev: usize, k: EventKind) {
        if !matches!(k, EventKind::GuestWrite { .. }) {
            // Stores are recorded by `guest_write`, before they land. A
            // completed flush reads the content of the pages stored without
            // their bytes that it makes durable from the backend.
            let window = self.slots[dev].window;
            let model = &mut self.slots[dev].durability;
            match self.mem.backend_at(window) {
                Some(b) => model.apply(&k, &mut |page, buf| read_page(b, page, buf)),
                None => model.apply(&k, &mut crate::durability::zero_prior),
            };
        }
        self.log.push(self.now, Some(self.ids[dev].clone()), k);
    }

    fn latency(&mut self, (lo, hi): (u64, u64)) -> u64 {
        self.rng.range_inclusive(lo, hi)
    }

    /// Adds a device backed by the page-cache model of a new, zero-filled
    /// backing file. Hot-plugged when the machine has already run.
    pub fn add_device(&mut self, spec: DeviceSpec) -> Result<(), MachineError> {
        let backend = PageCache::new(spec.size, spec.mode.backing_mode(spec.share), self.cfg.host.clone());
        self.add_device_with_backend(spec, Box::new(backend))
    }

    /// Adds a device whose backing store is `backend` (its size is the
    /// device's size). Hot-plugged when the machine has already run, like
    /// QEMU's `object_add` + `device_add`.
    pub fn add_device_with_backend(
        &mut self,
        spec: DeviceSpec,
        backend: Box<dyn HostBackend>,
    ) -> Result<(), MachineError> {
        if self.ids.iter().any(|d| **d == *spec.id) {
            return Err(MachineError::DuplicateId(spec.id));
        }
        let size = backend.size();
        let folio_pages = backend.folio_pages();
        // The size first (the device's own message), then the place.
        PmemConfig::new(&spec.id, GuestAddress(0), size).validate()?;
        let start = GuestAddress(self.place(&spec, size)?);
        let mut pc = PmemConfig::new(&spec.id, start, size);
        pc.shmem_region = spec.shmem_region;
        pc.readonly = spec.readonly;
        pc.failure_status = spec.failure_status;
        pc.indirect_desc = spec.indirect_desc;
        pc.vmm = spec.vmm;
        pc.rate_limiter = spec.rate_limiter;
        // A named VMM brings its own queue size.
        let queue_size = spec.vmm.map_or(self.cfg.queue_size, |v| v.host_side().queue_size);
        let mut device = PmemDevice::new_at(pc, self.now)?;
        // Queue and request slots in guest RAM.
        let layout = SplitQueueLayout::contiguous(GuestAddress(self.ram_next), queue_size)?;
        let slots_at = (layout.end().0 + 63) & !63;
        let slots_end = slots_at + SLOT_BYTES * u64::from(queue_size);
        if slots_end > self.cfg.ram_size {
            return Err(MachineError::NoRoom(spec.id));
        }
        let window = self.mem.add_pmem(&spec.id, start, backend, spec.readonly)?;
        let offered = device.offered_features();
        let accepted = device.negotiate(offered)?;
        let driver = PmemDriver::new(&mut self.mem, layout, GuestAddress(slots_at), device.indirect_negotiated())?
            .with_personality(spec.driver);
        let queue = SplitQueue::new(&self.mem, layout, device.indirect_negotiated())?;
        self.ram_next = (slots_end + 4095) & !4095;
        self.ids.push(spec.id.as_str().into());
        let durability = DurabilityModel::new(size, spec.mode.backing_mode(spec.share), Retention::Pending)
            .with_folio_pages(folio_pages);
        self.slots.push(DeviceSlot { window, mode: spec.mode, durability, device, queue, driver });
        let dev = self.ids.len() - 1;
        self.record(
            dev,
            vec![
                EventKind::DeviceAdded { start, size, hotplug: self.started, folio_pages },
                EventKind::FeaturesNegotiated { offered, accepted },
            ],
        );
        Ok(())
    }

    /// The device-memory region, as QEMU lays it out for this machine.
    pub fn device_memory(&self) -> DeviceMemory {
        DeviceMemory::of(self.cfg.ram_size, &self.cfg.device_memory)
    }

    /// Where a new device of `size` bytes goes (QEMU's placement rule).
    fn place(&self, spec: &DeviceSpec, size: u64) -> Result<u64, PlacementError> {
        let plugged: Vec<device_memory::PlacedDevice<'_>> = self
            .slots
            .iter()
            .map(|s| {
                let c = s.device.config();
                device_memory::PlacedDevice { id: &c.id, start: c.start.0, size: c.size }
            })
            .collect();
        let align = spec.align.unwrap_or(0).max(device_memory::FILE_PAGE_ALIGN);
        self.device_memory().place(&plugged, spec.start.map(|a| a.0), align, size)
    }

    /// Tries to remove a device: always refused (QEMU refuses `device_del`
    /// of virtio-pmem). The refusal is logged.
    pub fn remove_device(&mut self, id: &str) -> Result<(), MachineError> {
        let dev = self.index(id)?;
        let err = MachineError::HotUnplugUnsupported { id: id.to_string() };
        self.record(dev, vec![EventKind::UnplugRefused { reason: err.to_string() }]);
        Err(err)
    }

    fn region(&self, dev: usize, offset: u64, len: u64) -> Result<GuestAddress, MachineError> {
        let cfg = self.slots[dev].device.config();
        match offset.checked_add(len) {
            Some(end) if end <= cfg.size => Ok(GuestAddress(cfg.start.0 + offset)),
            _ => Err(MachineError::OutsideDevice { id: cfg.id.clone(), offset, len, size: cfg.size }),
        }
    }

    /// The guest stores `data` at `offset` of the device's region (DAX). On
    /// a `readonly=on` device the store is dropped, as QEMU drops it: `Ok`,
    /// and a [`EventKind::StoreDropped`] in the log.
    pub fn guest_write(&mut self, id: &str, offset: u64, data: &[u8]) -> Result<(), MachineError> {
        self.store(id, offset, Stored::Borrowed(data))
    }

    /// [`Machine::guest_write`] of bytes the caller hands over in a shared
    /// buffer (one from [`crate::host::page_pool::page_with`], say): the
    /// event log and, for a store of one whole aligned page, the durability
    /// model keep that buffer instead of a copy of it, and a flush has
    /// nothing to read back from the file. What the machine does is the
    /// same; only who holds the bytes differs. (Handed over, not lent: the
    /// model takes the buffer after the bytes are stored into the mapping
    /// without touching its reference count, which would wait for the
    /// stored bytes to leave the CPU's store buffer.)
    pub fn guest_write_shared(&mut self, id: &str, offset: u64, data: Arc<[u8]>) -> Result<(), MachineError> {
        self.store(id, offset, Stored::Shared(data))
    }

    fn store(&mut self, id: &str, offset: u64, stored: Stored<'_>) -> Result<(), MachineError> {
        let len = stored.bytes().len();
        let dev = self.index(id)?;
        let addr = self.region(dev, offset, len as u64)?;
        self.started = true;
        self.mem.set_now(self.now);
        if self.slots[dev].device.config().readonly {
            // QEMU maps a readonly=on backend read-only: a guest store is
            // ignored (TCG: measured by the oracle; KVM: the write exits to
            // QEMU's memory dispatch, which drops writes to read-only RAM).
            self.record(dev, vec![EventKind::StoreDropped { offset, len: len as u64 }]);
            return Ok(());
        }
        let keeps_bytes = !matches!(self.log.retention(), LogRetention::Recent(_));
        let whole_page = crate::memory::is_whole_page(offset, len);
        // At most one copy of the stored bytes, shared by the event log (when
        // it keeps them) and the durability model's new version. With a log
        // that keeps no bytes, a model that can records the store without
        // its bytes: a whole page handed over becomes the new version once
        // stored (no copy, no reference count touched); borrowed bytes are
        // read from the file later (when a flush completes): no copy on the
        // store.
        let lazy = !keeps_bytes && self.slots[dev].durability.records_lazily();
        let hand_over = lazy && whole_page && matches!(stored, Stored::Shared(_));
        let logged: Option<Arc<[u8]>> = keeps_bytes.then(|| match &stored {
            Stored::Shared(d) => Arc::clone(d),
            Stored::Borrowed(d) if whole_page => crate::host::page_pool::page_from(d),
            Stored::Borrowed(d) => Arc::from(*d),
        });
        let data = stored.bytes();
        if let Some(b) = self.mem.backend_at(self.slots[dev].window) {
            // What a crash could leave: recorded while the file still holds
            // the old content of the pages.
            let model = &mut self.slots[dev].durability;
            let mut prior = |page: u64, buf: &mut [u8]| read_page(b, page, buf);
            let shared = match &stored {
                Stored::Shared(d) if whole_page => Some(d),
                _ => logged.as_ref(),
            };
            match shared {
                _ if lazy => model.record_store(offset, len, &mut prior),
                Some(d) => model.record_write_shared(offset, d, &mut prior),
                None => model.record_write(offset, data, &mut prior),
            };
        }
        self.mem.write(addr, data)?;
        if let (true, Stored::Shared(d)) = (hand_over, stored) {
            self.slots[dev].durability.hand_over(offset, d);
        }
        // Straight into the log: the model recorded the store above, so
        // `record_one` has nothing to add.
        self.log.push(
            self.now,
            Some(self.ids[dev].clone()),
            EventKind::GuestWrite { offset, len: len as u64, data: logged.map(HexBytes) },
        );
        self.drain_host(dev);
        // The host's flusher may now have work: put its next wake-up on the agenda.
        self.schedule_host_poll(dev);
        Ok(())
    }

    /// The guest loads `len` bytes at `offset` of the device's region.
    pub fn guest_read(&mut self, id: &str, offset: u64, len: u64) -> Result<Vec<u8>, MachineError> {
        let dev = self.index(id)?;
        let addr = self.region(dev, offset, len)?;
        let mut buf = vec![0u8; len as usize];
        self.mem.read(addr, &mut buf)?;
        self.record(dev, vec![EventKind::GuestRead { offset, len }]);
        Ok(buf)
    }

    /// The application asks for a flush of the device (`fsync` on a file of
    /// a DAX file system there ends here). Returns the request id; its
    /// result appears once the simulation has run far enough.
    pub fn flush(&mut self, id: &str) -> Result<RequestId, MachineError> {
        let dev = self.index(id)?;
        self.started = true;
        let mut out = Vec::new();
        if self.slots[dev].mode != DeviceMode::VirtioPmem {
            let request = self.slots[dev].driver.flush_locally(&mut out);
            out.push(EventKind::NvdimmFlush { request, emulated: self.slots[dev].mode == DeviceMode::EmulatedNvdimm });
            self.record(dev, out);
            return Ok(request);
        }
        let status = self.slots[dev].device.status();
        let (req, sent) = self.slots[dev].driver.flush(&mut self.mem, status, &mut out);
        if sent {
            out.push(EventKind::Notified);
        }
        self.record(dev, out);
        if sent {
            self.kick(dev);
        }
        Ok(req)
    }

    /// The result of a flush, once returned to the application.
    pub fn flush_result(&self, id: &str, req: RequestId) -> Result<Option<FlushResult>, MachineError> {
        let dev = self.index(id)?;
        Ok(self.slots[dev].driver.result(req))
    }

    /// Runs the next action on the agenda; false when there is none.
    pub fn step(&mut self) -> bool {
        let Some((&(at, seq), &action)) = self.agenda.iter().next() else {
            return false;
        };
        self.agenda.remove(&(at, seq));
        self.started = true;
        self.now = self.now.max(at);
        self.mem.set_now(self.now);
        match action {
            Action::DeviceRun(dev) => self.device_run(dev),
            Action::HostPoll(dev) => self.host_poll(dev),
            Action::GuestInterrupt(dev) => self.guest_interrupt(dev),
            Action::RateLimiterTimer(dev) => self.rate_limiter_timer(dev),
        }
        for dev in 0..self.slots.len() {
            self.drain_host(dev);
        }
        true
    }

    /// Steps until nothing is left to do (at most `max_steps` steps).
    /// Returns the number of steps run.
    pub fn run_until_idle(&mut self, max_steps: u64) -> u64 {
        let mut n = 0;
        while n < max_steps && self.step() {
            n += 1;
        }
        n
    }

    /// Runs every action due within the next `nanos` nanoseconds and moves
    /// the clock to the end of that span.
    pub fn run_for(&mut self, nanos: u64) -> u64 {
        let end = self.now.plus_nanos(nanos);
        let mut n = 0;
        while let Some((&(at, _), _)) = self.agenda.iter().next() {
            if at > end {
                break;
            }
            self.step();
            n += 1;
        }
        self.now = end;
        self.mem.set_now(end);
        n
    }

    /// Puts each device's next host-side event (a background-writeback
    /// timer, a page write finishing) on the agenda, so that
    /// [`Machine::run_for`] and [`Machine::run_until_idle`] run it in time.
    /// Guest stores dirty host pages without doing so, and a crash clears
    /// the agenda while dirty pages may remain; callers that let time pass
    /// after either call this. Logs nothing; idempotent.
    pub fn schedule_host_events(&mut self) {
        for dev in 0..self.slots.len() {
            self.schedule_host_poll(dev);
        }
    }

    /// Time of the next action on the agenda.
    pub fn next_action_time(&self) -> Option<SimTime> {
        self.agenda.keys().next().map(|k| k.0)
    }

    /// The guest notified device `dev`: the device runs now when its VMM
    /// handles notifications in the vCPU (QEMU), otherwise after the notify
    /// latency.
    fn kick(&mut self, dev: usize) {
        if self.slots[dev].device.config().host_side().synchronous_notify {
            self.device_run(dev);
        } else {
            let at = self.now.plus_nanos(self.latency(self.cfg.notify_latency_ns));
            self.schedule(at, Action::DeviceRun(dev));
        }
    }

    /// The device handles a notification (unless its rate limiter throttles
    /// it).
    fn device_run(&mut self, dev: usize) {
        let queue_empty = self.queue_empty(dev);
        let mut out = Vec::new();
        let admitted = self.slots[dev].device.admit_notification(self.now, queue_empty, &mut out);
        self.handle_queue(dev, admitted, out);
    }

    /// The device's rate-limiter timer fires: the device handles its queue.
    fn rate_limiter_timer(&mut self, dev: usize) {
        let queue_empty = self.queue_empty(dev);
        let mut out = Vec::new();
        let go = self.slots[dev].device.rate_limiter_timer(self.now, queue_empty, &mut out);
        self.handle_queue(dev, go, out);
    }

    /// True when a rate-limited device's available ring holds nothing
    /// (Firecracker's `is_empty` check); not read for other devices.
    fn queue_empty(&self, dev: usize) -> bool {
        let slot = &self.slots[dev];
        slot.device.rate_limiter().is_some() && slot.queue.pending(&self.mem) == 0
    }

    /// Pops and answers the queue when `run`, starts the host syncs, and
    /// logs `out` with what the device did.
    fn handle_queue(&mut self, dev: usize, run: bool, mut out: Vec<EventKind>) {
        let slot = &mut self.slots[dev];
        let flushes =
            if run { slot.device.process_queue(&mut self.mem, &mut slot.queue, &mut out) } else { Vec::new() };
        let now = self.now;
        let interrupted = out.iter().any(|e| matches!(e, EventKind::Device(DeviceEvent::Interrupt)));
        if let Some(backend) = self.mem.backend_at_mut(self.slots[dev].window) {
            self.slots[dev].device.start_syncs(flushes, backend, now, &mut out);
        }
        self.record(dev, out);
        self.schedule_host_poll(dev);
        if interrupted {
            let at = self.now.plus_nanos(self.latency(self.cfg.interrupt_latency_ns));
            self.schedule(at, Action::GuestInterrupt(dev));
        }
        self.schedule_rate_limiter_timer(dev);
    }

    /// Puts the device's armed rate-limiter timer on the agenda (once).
    fn schedule_rate_limiter_timer(&mut self, dev: usize) {
        let Some(t) = self.slots[dev].device.rate_limiter_fires_at() else {
            return;
        };
        if !self.agenda.values().any(|a| *a == Action::RateLimiterTimer(dev)) {
            self.schedule(t.max(self.now), Action::RateLimiterTimer(dev));
        }
    }

    fn schedule_host_poll(&mut self, dev: usize) {
        let next = self.mem.backend_at(self.slots[dev].window).and_then(|b| b.next_event_time());
        if let Some(t) = next {
            let already = self.agenda.iter().any(|(k, a)| *a == Action::HostPoll(dev) && k.0 <= t);
            if !already {
                self.schedule(t.max(self.now), Action::HostPoll(dev));
            }
        }
    }

    fn host_poll(&mut self, dev: usize) {
        let now = self.now;
        let done = self.mem.backend_at_mut(self.slots[dev].window).map(|b| b.advance(now)).unwrap_or_default();
        let mut out = Vec::new();
        for c in done {
            let slot = &mut self.slots[dev];
            slot.device.complete_sync(&mut self.mem, &mut slot.queue, c.ticket, c.result, &mut out);
        }
        let interrupted = out.iter().any(|e| matches!(e, EventKind::Device(DeviceEvent::Interrupt)));
        self.record(dev, out);
        self.schedule_host_poll(dev);
        if interrupted {
            let at = self.now.plus_nanos(self.latency(self.cfg.interrupt_latency_ns));
            self.schedule(at, Action::GuestInterrupt(dev));
        }
    }

    fn guest_interrupt(&mut self, dev: usize) {
        let mut out = Vec::new();
        let notify = self.slots[dev].driver.on_interrupt(&mut self.mem, &mut out);
        if notify {
            out.push(EventKind::Notified);
        }
        self.record(dev, out);
        if notify {
            self.kick(dev);
        }
    }

    /// Resets a device (the driver's reset after DEVICE_NEEDS_RESET): device
    /// state and rings are re-initialised, in-flight requests are lost.
    pub fn reset_device(&mut self, id: &str) -> Result<(), MachineError> {
        let dev = self.index(id)?;
        self.restart(dev)
    }

    fn restart(&mut self, dev: usize) -> Result<(), MachineError> {
        let slot = &mut self.slots[dev];
        slot.device.reset();
        let offered = slot.device.offered_features();
        slot.device.negotiate(offered)?;
        let layout = *slot.queue.layout();
        let indirect = slot.device.indirect_negotiated();
        slot.driver.reinit(&mut self.mem)?;
        slot.queue = SplitQueue::new(&self.mem, layout, indirect)?;
        self.record(dev, vec![EventKind::DeviceRestarted]);
        Ok(())
    }

    fn drain_host(&mut self, dev: usize) {
        let events = self.mem.backend_at_mut(self.slots[dev].window).map(|b| b.take_events()).unwrap_or_default();
        if !events.is_empty() {
            self.record(dev, events.into_iter().map(EventKind::Host).collect());
        }
    }

    /// Injects a failure. A guest crash and a VMM kill lose nothing on the
    /// host (the page cache survives; a `share=off` private copy dies with a
    /// killed VMM); a host power failure loses everything not on disk and
    /// tears pages under writeback at the configured granularity. Afterwards
    /// every device restarts (in-flight requests are lost) and the guest
    /// reads what survived.
    pub fn crash(&mut self, kind: CrashKind) -> Result<(), MachineError> {
        self.started = true;
        self.agenda.clear();
        let tear = self.cfg.tear;
        let mut rng = self.rng.derive(&format!("crash-{}", self.log.len()));
        for dev in 0..self.slots.len() {
            let id = self.ids[dev].clone();
            let now = self.now;
            let report = match self.mem.backend_mut(&id) {
                Some(b) => {
                    b.advance(now);
                    match kind {
                        CrashKind::GuestCrash => Default::default(),
                        CrashKind::VmmKill => {
                            crate::host::PowerFailReport { lost_pages: b.process_killed(), torn_pages: Vec::new() }
                        }
                        CrashKind::PowerFailure => b.power_fail(&mut rng, tear),
                    }
                }
                None => Default::default(),
            };
            self.drain_host(dev);
            if kind == CrashKind::PowerFailure || !report.lost_pages.is_empty() {
                // The file now holds what survived.
                self.slots[dev].durability.all_durable();
            }
            self.record(
                dev,
                vec![EventKind::Crash { kind, lost_pages: report.lost_pages, torn_pages: report.torn_pages, tear }],
            );
            self.restart(dev)?;
            // Every crash ends a Firecracker process (it does not reboot
            // guests): a new one starts with a fresh rate limiter.
            self.slots[dev].device.restart_rate_limiter(self.now);
            self.schedule_host_poll(dev);
        }
        Ok(())
    }

    /// The guest maps the device with `MAP_SYNC`: refused on virtio-pmem
    /// (EOPNOTSUPP), allowed on NVDIMMs (on an emulated one it is a lie:
    /// the host never syncs).
    pub fn map_sync(&mut self, id: &str) -> Result<(), MachineError> {
        let dev = self.index(id)?;
        let (ok, detail) = match self.slots[dev].mode {
            DeviceMode::VirtioPmem => {
                (false, "EOPNOTSUPP: virtio-pmem does not support MAP_SYNC; use fsync".to_string())
            }
            DeviceMode::RealNvdimm => (true, "stores are durable once out of the CPU cache".to_string()),
            DeviceMode::EmulatedNvdimm => {
                (true, "allowed, but the emulated NVDIMM never syncs its host file: nothing is durable".to_string())
            }
        };
        self.record(dev, vec![EventKind::MapSync { ok, detail }]);
        if ok {
            Ok(())
        } else {
            Err(MachineError::MapSyncUnsupported(id.to_string()))
        }
    }

    /// Makes the page writes of the next `n` host syncs of a device fail
    /// with EIO (Linux fsync error semantics apply).
    pub fn inject_sync_failures(&mut self, id: &str, n: u64) -> Result<(), MachineError> {
        let dev = self.index(id)?;
        if let Some(b) = self.mem.backend_mut(id) {
            b.inject_sync_failures(n);
        }
        self.record(
            dev,
            vec![EventKind::FaultInjected { detail: format!("the next {n} host fsync(s) fail with EIO") }],
        );
        Ok(())
    }

    /// Where the working set of every device lives: virtio-pmem's DAX
    /// against virtio-blk with a guest page cache (see
    /// [`crate::host::footprint`]). The working set is the pages each
    /// device's host page cache holds now.
    pub fn footprint(&self) -> Vec<crate::host::footprint::Footprint> {
        let pages: u64 =
            self.ids.iter().filter_map(|id| self.mem.backend(id).and_then(|b| b.page_counts())).map(|c| c.cached).sum();
        crate::host::footprint::compare(pages, self.cfg.ram_size, self.cfg.host.host_memory_bytes)
    }

    /// The device's mode.
    pub fn device_mode(&self, id: &str) -> Result<DeviceMode, MachineError> {
        Ok(self.slots[self.index(id)?].mode)
    }

    /// The durability model of a device: its durable image and what a crash
    /// now could leave (see [`crate::durability`]), with every stored page's
    /// content captured.
    pub fn durability(&mut self, id: &str) -> Result<&DurabilityModel, MachineError> {
        let dev = self.index(id)?;
        if let Some(b) = self.mem.backend_at(self.slots[dev].window) {
            self.slots[dev].durability.capture(&mut |page, buf| read_page(b, page, buf));
        }
        Ok(&self.slots[dev].durability)
    }

    /// The state of each host page of a device's backing file.
    pub fn page_states(&self, id: &str) -> Result<Vec<PageInfo>, MachineError> {
        Ok(self.backend(id)?.page_states())
    }

    /// Reads what is durable (on the host's disk) in a device's file.
    pub fn read_durable(&self, id: &str, offset: u64, len: u64) -> Result<Vec<u8>, MachineError> {
        let dev = self.index(id)?;
        self.region(dev, offset, len)?;
        let mut buf = vec![0u8; len as usize];
        self.backend(id)?
            .read_durable(offset, &mut buf)
            .map_err(|e| MachineError::Memory(MemoryError::Host { region: id.to_string(), reason: e.to_string() }))?;
        Ok(buf)
    }

    /// Mutable access to guest memory, to play a buggy or malicious driver
    /// (write raw descriptors and ring entries) in tests and lessons (built
    /// for tests and with the `test-utils` feature).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn memory_mut(&mut self) -> &mut MachineMemory {
        &mut self.mem
    }

    /// Notifies a device without going through the driver (after raw ring
    /// writes through `Machine::memory_mut`).
    pub fn notify(&mut self, id: &str) -> Result<(), MachineError> {
        let dev = self.index(id)?;
        self.record(dev, vec![EventKind::Notified]);
        self.kick(dev);
        Ok(())
    }

    /// A snapshot of a device.
    pub fn device_snapshot(&self, id: &str) -> Result<DeviceSnapshot, MachineError> {
        let dev = self.index(id)?;
        let s = &self.slots[dev];
        Ok(DeviceSnapshot {
            config: s.device.config().clone(),
            layout: *s.queue.layout(),
            next_avail: s.queue.next_avail(),
            next_used: s.queue.next_used(),
            avail_idx: s.driver.queue().avail_idx(),
            free_descriptors: s.driver.queue().num_free(),
            in_flight: s.driver.in_flight(),
            parked: s.driver.parked(),
            waiting_for_host: s.device.in_flight(),
            status: s.device.status().0,
            stats: s.device.stats().clone(),
            host: self.mem.backend(id).map(|b| b.stats()).unwrap_or_default(),
        })
    }

    /// The host backend of a device.
    pub fn backend(&self, id: &str) -> Result<&dyn HostBackend, MachineError> {
        self.mem.backend(id).ok_or_else(|| MachineError::UnknownDevice(id.to_string()))
    }

    /// The backing file of device `id` was created or resized at `at`
    /// (at or before now), before anything was stored into it: see
    /// [`HostBackend::file_dirtied`]. For a model run beside a real host
    /// whose files were made before the guest booted.
    pub fn host_file_dirtied(&mut self, id: &str, at: SimTime) -> Result<(), MachineError> {
        let backend = self.mem.backend_mut(id).ok_or_else(|| MachineError::UnknownDevice(id.to_string()))?;
        backend.file_dirtied(at);
        Ok(())
    }

    /// The host backend of a device, mutably (to inject faults; built for
    /// tests and with the `test-utils` feature).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn backend_mut(&mut self, id: &str) -> Result<&mut (dyn HostBackend + 'static), MachineError> {
        self.mem.backend_mut(id).ok_or_else(|| MachineError::UnknownDevice(id.to_string()))
    }
}

#[cfg(test)]
mod tests;
