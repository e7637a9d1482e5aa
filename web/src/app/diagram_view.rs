//! The system diagram as SVG: the components of [`crate::diagram`], what
//! each holds at the playhead (from the log's fold and the ring bytes in
//! guest memory), the paths stores and flushes take, and the token.

use crate::diagram::{ring_indices_at, Place, Scene, Token, VIEW_BOX};
use crate::palette::CellState;
use crate::rings::RingView;
use crate::workbench::{View, Workbench};
use yew::prelude::*;

/// What the diagram writes in each box.
struct Contents {
    app: String,
    dax: String,
    driver: String,
    desc: String,
    avail: String,
    used: String,
    device: String,
    cache: String,
    disk: String,
}

fn contents(b: &Workbench, scene: &Scene) -> Contents {
    let c = b.map().counts();
    let n = |s: CellState| c.get(s);
    let cache = format!(
        "{} dirty · {} under writeback · {} clean",
        n(CellState::Dirty) + n(CellState::WritebackDirty),
        n(CellState::Writeback) + n(CellState::WritebackDirty),
        n(CellState::Clean)
    );
    let lost = n(CellState::Lost) + n(CellState::Torn);
    let disk = format!(
        "{} page(s) durable{}",
        n(CellState::Clean) + n(CellState::OnDisk),
        if lost > 0 { format!(" · {lost} lost or torn") } else { String::new() }
    );
    let mut out = Contents {
        app: match scene.token {
            Token::Flush(r) if scene.stage == Some(8) => format!("fsync #{} returned", r.0),
            Token::Flush(r) => format!("waits for fsync #{}", r.0),
            _ => "stores through its mapping; fsync asks for durability".into(),
        },
        dax: "stores → host page cache".into(),
        driver: String::new(),
        desc: String::new(),
        avail: String::new(),
        used: String::new(),
        device: String::new(),
        cache,
        disk,
    };
    let View::Live(s) = b.view() else {
        out.desc = "not in a replayed log".into();
        return out;
    };
    let m = s.machine();
    let Ok(r) = RingView::of_device(m, b.device()) else { return out };
    let (avail, used) = ring_indices_at(b.events(), b.shown(), b.device(), r.avail_idx, r.used_idx);
    let in_flight = avail.wrapping_sub(used);
    out.driver = format!("{in_flight} request(s) in flight");
    out.desc = format!("{} of {} used", r.descriptors.len(), r.size);
    out.avail = format!("idx = {avail}");
    out.used = format!("idx = {used}");
    out.device = match m.device_snapshot(b.device()) {
        Ok(d) => format!("virtio-pmem · {} flush(es) answered", d.stats.flushes_ok + d.stats.flushes_failed),
        Err(_) => String::new(),
    };
    out
}

fn text_of(c: &Contents, p: Place) -> &str {
    match p {
        Place::App => &c.app,
        Place::Dax => &c.dax,
        Place::Driver => &c.driver,
        Place::DescTable => &c.desc,
        Place::AvailRing => &c.avail,
        Place::UsedRing => &c.used,
        Place::Device => &c.device,
        Place::PageCache => &c.cache,
        Place::Disk => &c.disk,
    }
}

/// The font size at which `text` fits a box `width` wide (at most `size`),
/// taking a character as 0.6 em: the diagram never spills out of a box.
fn fit_font(text: &str, size: f64, width: f64) -> String {
    let chars = text.chars().count().max(1) as f64;
    format!("{:.1}", size.min((width - 20.0) / (0.6 * chars)).max(9.0))
}

fn component(p: Place, c: &Contents, scene: &Scene, pointed: Option<Place>) -> Html {
    let (x, y, w, h) = p.rect();
    let small = matches!(p, Place::DescTable | Place::AvailRing | Place::UsedRing);
    let class = classes!(
        "comp",
        format!("comp-{}", p.key()),
        (scene.place == Some(p)).then_some("active"),
        (scene.from == Some(p)).then_some("was"),
        (pointed == Some(p)).then_some("pointed"),
    );
    let (label_size, text_size) = if small { (15.0, 15.0) } else { (24.0, 17.0) };
    let detail = text_of(c, p);
    let (label_size, text_size) = (fit_font(p.label(), label_size, w), fit_font(detail, text_size, w));
    html! {
        <g class={class} id={format!("comp-{}", p.key())} data-place={p.key()}>
            <rect x={x.to_string()} y={y.to_string()} width={w.to_string()} height={h.to_string()} rx="8" />
            <text class="label" x={(x + 10.0).to_string()} y={(y + if small { 22.0 } else { 30.0 }).to_string()}
                font-size={label_size.to_string()}>{ p.label() }</text>
            <text class="detail" x={(x + 10.0).to_string()} y={(y + h - 14.0).to_string()}
                font-size={text_size.to_string()}>{ detail }</text>
            { if pointed == Some(p) { html! {
                <text class="note-mark" x={(x + w - 8.0).to_string()} y={(y + 20.0).to_string()} text-anchor="end" font-size="15">{ "◆ the lesson's note" }</text>
            } } else { html! {} } }
        </g>
    }
}

/// Lines between the components: the store path, the flush path, and the
/// writeback.
fn paths() -> Html {
    const LINES: [(&str, &str); 9] = [
        ("store", "M160 80 V118"),
        ("store", "M160 214 V272"),
        ("flush", "M420 80 V118"),
        ("flush", "M510 166 H540"),
        ("flush", "M760 214 V272"),
        ("flush", "M580 312 H540"),
        ("writeback", "M280 352 V392"),
        ("flush", "M910 272 V214"),
        ("flush", "M840 200 C 760 250, 560 250, 510 200"),
    ];
    html! {
        <g class="paths" aria-hidden="true">
            { for LINES.iter().map(|(k, d)| html! { <path class={classes!("path", *k)} d={*d} /> }) }
            <text class="zone" x="540" y="138" font-size="16" font-weight="700">{ "Virtqueue 0, in guest memory" }</text>
            <line class="boundary" x1="0" y1="243" x2="1000" y2="243" />
            <text class="zone" x="990" y="236" text-anchor="end" font-size="15">{ "guest" }</text>
            <text class="zone" x="990" y="262" text-anchor="end" font-size="15">{ "host" }</text>
        </g>
    }
}

/// The diagram of the selected device at the playhead. `pointed` is the
/// component the lesson's note talks about.
pub fn diagram(b: &Workbench, pointed: Option<Place>) -> Html {
    let scene = b.scene();
    let c = contents(b, &scene);
    let token = scene.place.map(|p| {
        let (x, y) = p.anchor();
        let label = scene.token.label();
        html! {
            <g id="token" class={classes!("token", format!("token-{}", p.key()))} data-place={p.key()}
                data-event={scene.event.map(|e| e.to_string()).unwrap_or_default()}
                transform={format!("translate({x:.1},{y:.1})")}>
                <circle r="13" />
                { if label.is_empty() { html! {} } else { html! {
                    <text x="18" y="-12" font-size="17">{ label }</text>
                } } }
            </g>
        }
    });
    let title = format!(
        "The path of a write on device {}: {}. Host page cache: {}. Disk: {}.",
        b.device(),
        scene.caption,
        c.cache,
        c.disk
    );
    html! {
        <figure class="system" id="system">
            <svg id="diagram" viewBox={format!("0 0 {} {}", VIEW_BOX.0, VIEW_BOX.1)} role="img" aria-labelledby="diagram-title">
                <title id="diagram-title">{ title }</title>
                { paths() }
                { for Place::ALL.iter().map(|p| component(*p, &c, &scene, pointed)) }
                { for token }
            </svg>
            <figcaption id="scene-caption">{ &scene.caption }</figcaption>
        </figure>
    }
}
