//! Model against real, quantity by quantity, for one step.

use super::model_side::{op_succeeded, ModelStep};
use super::plan::Plan;
use super::probe::{folio_pages, HostFolios, PAGE};
use super::real::RealStep;
use pmem_core::scenario::{show_bytes, Op, Step};
use serde::Serialize;
use std::collections::BTreeMap;

/// One quantity of one step.
#[derive(Clone, Debug, Serialize)]
pub struct Quantity {
    /// What is measured.
    pub name: String,
    /// The device, when the quantity is per device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// What the model says.
    pub model: String,
    /// What the real system shows.
    pub real: String,
    /// Whether the two are compared (some are shown only).
    pub compared: bool,
    /// Whether they agree (true when not compared).
    pub agree: bool,
}

impl Quantity {
    /// A compared quantity (agreeing when both texts are equal).
    pub fn compared(name: &str, device: Option<&str>, model: String, real: String) -> Quantity {
        let agree = model == real;
        Quantity { name: name.into(), device: device.map(Into::into), model, real, compared: true, agree }
    }

    /// A quantity shown, not compared.
    pub fn shown(name: &str, device: Option<&str>, model: String, real: String) -> Quantity {
        Quantity { name: name.into(), device: device.map(Into::into), model, real, compared: false, agree: true }
    }
}

/// What the comparison needs besides the two sides.
pub struct Context<'a> {
    /// The plan (device order).
    pub plan: &'a Plan,
    /// The host's folio unit.
    pub folios: HostFolios,
    /// Popped and completed requests of each device before the step.
    pub before: &'a BTreeMap<String, (u64, u64)>,
    /// The result of each device's last guest fsync on the real side.
    pub real_flush: &'a mut BTreeMap<String, bool>,
    /// … and in the model.
    pub model_flush: &'a mut BTreeMap<String, bool>,
}

/// Every quantity of a step.
pub fn step(ctx: &mut Context<'_>, step: &Step, model: &ModelStep, real: &RealStep) -> Vec<Quantity> {
    let mut q = Vec::new();
    result(&mut q, ctx, step, model, real);
    flushes(&mut q, ctx, model, real);
    data(&mut q, ctx, step, model, real);
    pages(&mut q, ctx, model, real);
    placement(&mut q, ctx, model, real);
    q
}

fn result(q: &mut Vec<Quantity>, ctx: &mut Context<'_>, step: &Step, model: &ModelStep, real: &RealStep) {
    let word = |ok: bool| if ok { "ok" } else { "failed" }.to_string();
    let model_ok = op_succeeded(step, &model.outcome);
    match &step.op {
        Op::Write { .. } | Op::Read { .. } | Op::Fsync { .. } | Op::Msync { .. } | Op::Mmap { .. } => {
            let model_text = if model_ok { "ok".into() } else { failure(errno_named(&model.outcome.detail)) };
            let real_text = match &real.report {
                Some(r) if r.rc != 0 => failure(Some(errno_name(r.errno))),
                Some(_) => "ok".into(),
                None => "no answer".into(),
            };
            q.push(Quantity::compared("result", None, model_text, real_text));
            if let (Op::Mmap { device, .. }, true, Some(r)) = (&step.op, model_ok, &real.report) {
                let dax = |yes: bool| if yes { "yes" } else { "no" }.to_string();
                let real_dax = r.rc == 0 && r.data.first() == Some(&1);
                q.push(Quantity::compared("mapping is DAX (statx)", Some(device), dax(true), dax(real_dax)));
            }
        }
        Op::Hotplug { .. } | Op::Unplug { .. } => {
            let real_ok = matches!(real.qmp, Some(Ok(()))) && real.report.as_ref().is_none_or(|r| r.rc == 0);
            let mut quantity = Quantity::compared("result", None, word(model_ok), word(real_ok));
            let refusal = match &real.qmp {
                Some(Err(msg)) => {
                    quantity.agree = !model_ok;
                    // The model quotes QEMU's refusal: `… (QEMU: "text")`.
                    let real_msg = msg.trim().trim_end_matches('.').to_string();
                    // The model quotes QEMU's refusal (`… (QEMU: "text")`), or
                    // is QEMU's message itself (a placement refusal).
                    let detail = &model.outcome.detail;
                    let quoted = detail.split("(QEMU: \"").nth(1).and_then(|r| r.split("\")").next());
                    let own = detail.contains(&real_msg).then_some(real_msg.as_str());
                    let said = quoted.or(own).unwrap_or("none").to_string();
                    Some(Quantity::compared("QEMU's refusal", None, said, real_msg))
                }
                _ => None,
            };
            q.push(quantity);
            q.extend(refusal);
        }
        _ => {}
    }
    if let Op::Fsync { device, .. } | Op::Msync { device, .. } = &step.op {
        if let Some(r) = &real.report {
            ctx.real_flush.insert(device.clone(), r.rc == 0);
        }
    }
    ctx.model_flush.extend(model.flushes.clone());
}

/// The errnos a guest step can end with, named.
const ERRNOS: [(i32, &str); 9] = [
    (libc::EPERM, "EPERM"),
    (libc::EIO, "EIO"),
    (libc::ENXIO, "ENXIO"),
    (libc::EACCES, "EACCES"),
    (libc::ENODEV, "ENODEV"),
    (libc::EINVAL, "EINVAL"),
    (libc::ENOSPC, "ENOSPC"),
    (libc::EROFS, "EROFS"),
    (libc::EOPNOTSUPP, "EOPNOTSUPP"),
];

/// An errno's name (`errno N` for one not in [`ERRNOS`]).
fn errno_name(errno: i32) -> String {
    ERRNOS.iter().find(|(n, _)| *n == errno).map_or(format!("errno {errno}"), |(_, name)| (*name).to_string())
}

/// The first errno name the model's text gives, if any.
fn errno_named(detail: &str) -> Option<String> {
    let words = detail.split(|c: char| !c.is_ascii_alphanumeric());
    words.filter_map(|w| ERRNOS.iter().find(|(_, name)| *name == w)).map(|(_, name)| (*name).to_string()).next()
}

fn failure(errno: Option<String>) -> String {
    errno.map_or("failed".into(), |e| format!("failed ({e})"))
}

fn flushes(q: &mut Vec<Quantity>, ctx: &Context<'_>, model: &ModelStep, real: &RealStep) {
    let (mut popped, mut completed) = (0, 0);
    for d in &model.devices {
        let (p, c) = ctx.before.get(&d.id).copied().unwrap_or_default();
        popped += d.popped - p;
        completed += d.completed - c;
    }
    q.push(Quantity::compared(
        "flush requests (all devices)",
        None,
        popped.to_string(),
        real.trace.requests.to_string(),
    ));
    q.push(Quantity::compared(
        "flush responses (all devices)",
        None,
        completed.to_string(),
        real.trace.responses.to_string(),
    ));
}

fn data(q: &mut Vec<Quantity>, ctx: &Context<'_>, step: &Step, model: &ModelStep, real: &RealStep) {
    let model_bytes = model.data.as_deref().map(show_bytes).unwrap_or_else(|| "error".into());
    match &step.op {
        Op::Read { device, .. } | Op::ExpectData { device, .. } => {
            let real_bytes = real.report.as_ref().map_or("no answer".into(), |r| show_bytes(&r.data));
            q.push(Quantity::compared("data read by the guest", Some(device), model_bytes, real_bytes));
        }
        Op::ExpectDurable { device, .. } => {
            let real_bytes = real.durable.as_deref().map_or("unknown".into(), show_bytes);
            q.push(Quantity::compared("data on the host's disk (fsync'd copy)", Some(device), model_bytes, real_bytes));
        }
        Op::ExpectFlush { device, .. } => {
            let show = |r: Option<&bool>| match r {
                Some(true) => "ok".to_string(),
                Some(false) => "eio".to_string(),
                None => "none".to_string(),
            };
            let (m, r) = (show(ctx.model_flush.get(device)), show(ctx.real_flush.get(device)));
            q.push(Quantity::compared("last flush result", Some(device), m, r));
        }
        Op::PowerFailure => {
            for (id, image) in &model.crash_image {
                let real_image = real.crash_image.get(id);
                let differ: Vec<u64> = image
                    .iter()
                    .filter(|(p, b)| real_image.and_then(|r| r.get(p)) != Some(b))
                    .map(|(p, _)| *p)
                    .collect();
                let summary = |n: usize| format!("{n} tracked page(s)");
                let real_text =
                    if differ.is_empty() { summary(image.len()) } else { format!("differs at page(s) {differ:?}") };
                q.push(Quantity::compared("crash image (durable content)", Some(id), summary(image.len()), real_text));
            }
        }
        _ => {}
    }
}

fn pages(q: &mut Vec<Quantity>, ctx: &Context<'_>, model: &ModelStep, real: &RealStep) {
    for d in &model.devices {
        let Some(i) = ctx.plan.index(&d.id) else { continue };
        let Some(cs) = real.files.get(i).copied().flatten() else { continue };
        let file_pages = d.size / PAGE;
        let shared = ctx.plan.devices[i].share;
        // The model runs with the host's folio size: its own counts (whole
        // folios with 2 MiB folios) are compared.
        let count = |pages: &[u64]| if shared { pages.len() as u64 } else { 0 };
        let (dirty, writeback) = (count(&d.dirty_pages), count(&d.writeback_pages));
        debug_assert!(!shared || dirty == folio_pages(d.dirty_pages.iter().copied(), ctx.folios, file_pages));
        let id = Some(d.id.as_str());
        let label = |what: &str| match ctx.folios {
            HostFolios::Small => format!("{what} pages"),
            HostFolios::Huge => format!("{what} pages (2 MiB folios)"),
        };
        for (what, m, r) in [("dirty", dirty, cs.dirty), ("writeback", writeback, cs.writeback)] {
            q.push(Quantity::compared(&label(what), id, m.to_string(), r.to_string()));
        }
        q.push(Quantity::shown("cached pages", id, d.cached.to_string(), cs.cached.to_string()));
        if dirty != d.dirty {
            q.push(Quantity::shown("dirty pages (model, 4 KiB)", id, d.dirty.to_string(), "-".into()));
        }
        if let Some(r) = &real.report {
            if let Some(s) = r.status.get(i) {
                q.push(Quantity::compared("device status", id, format!("{:#04x}", d.status), format!("{s:#04x}")));
            }
        }
    }
}

fn placement(q: &mut Vec<Quantity>, ctx: &Context<'_>, model: &ModelStep, real: &RealStep) {
    if real.memory.is_empty() {
        return;
    }
    for d in &model.devices {
        let r = real.memory.iter().find(|m| m.id == d.id);
        let show = |addr: u64, size: u64| format!("{addr:#x} (+{size:#x})");
        let real_text = r.map_or("absent".into(), |m| show(m.memaddr, m.size));
        q.push(Quantity::compared(
            "memaddr (QMP query-memory-devices)",
            Some(&d.id),
            show(d.memaddr, d.size),
            real_text,
        ));
    }
    let _ = ctx;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_are_named_on_both_sides_alike() {
        assert_eq!(errno_name(95), "EOPNOTSUPP");
        assert_eq!(errno_name(4242), "errno 4242");
        assert_eq!(
            errno_named("mmap(MAP_SYNC) on 'nv1' fails with EOPNOTSUPP: virtio-pmem …"),
            Some("EOPNOTSUPP".into())
        );
        // A name inside a longer word is not an errno.
        assert_eq!(errno_named("EIOX or XEIO"), None);
        assert_eq!(failure(errno_named("fsync returned EIO")), failure(Some(errno_name(5))));
        // Negative control: different errnos do not read alike.
        assert_ne!(failure(Some(errno_name(5))), failure(Some(errno_name(95))));
    }
}
