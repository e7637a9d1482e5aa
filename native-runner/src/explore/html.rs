//! The HTML report of a campaign: one self-contained file (inline CSS and
//! SVG, no script, nothing fetched) with
//! - a summary (target, checker, knobs, states checked, verdict);
//! - a timeline of the crash points: a mark per write, the durability
//!   frontier advancing, acknowledged flushes, and crash points where
//!   violations were found in red;
//! - the failing crash points (a table) and the violations kept;
//! - the minimal counterexample;
//! - a plot of the states explored per crash point.

use super::{describe_pages, describe_point, ExploreReport};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1d2330}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d8dde6}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d8dde6;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f2f4f8}.ok{color:#17803d;font-weight:600}.bad{color:#c0262d;font-weight:600}
code{background:#f2f4f8;padding:0 .25rem;border-radius:3px}.muted{color:#667085}
svg{background:#fbfcfe;border:1px solid #d8dde6;border-radius:4px}
";

fn row(out: &mut String, k: &str, v: &str) {
    let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), v);
}

/// The report as one HTML document.
pub fn render(r: &ExploreReport) -> String {
    let c = &r.campaign;
    let t = &r.target;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pmemlab explore: {}</title><style>{STYLE}</style></head><body>",
        escape(&t.describe())
    );
    let _ = writeln!(h, "<h1>Crash-consistency campaign: {}</h1>", escape(&t.describe()));
    let verdict = if c.violations_total == 0 {
        "<span class=\"ok\">no violation</span>: every crash image checked is consistent".to_string()
    } else {
        format!("<span class=\"bad\">{} violation(s)</span> found", c.violations_total)
    };
    let _ = writeln!(h, "<p>{verdict}{}</p>", if r.complete { "" } else { " — <b>incomplete</b> campaign" });
    h.push_str("<table>");
    row(&mut h, "device", &format!("{} ({} bytes)", escape(&t.device), t.size));
    row(&mut h, "history", &format!("{} write(s), {} crash point(s)", t.writes, t.points));
    row(&mut h, "checker", &escape(&t.checker_words()));
    row(
        &mut h,
        "knobs",
        &format!(
            "seed {}, tear {}, shard {}/{}, exhaustive up to {} image(s) per point, else {} sampled, {} torn sampled",
            r.config.seed,
            r.config.tear,
            r.config.shard.0,
            r.config.shard.1,
            r.config.exhaustive_limit,
            r.config.samples_per_point,
            r.config.torn_samples_per_point
        ),
    );
    row(
        &mut h,
        "states",
        &format!(
            "{} checked, {} duplicate(s) skipped; {} point(s) exhaustive, {} sampled",
            c.checked, c.duplicates, c.exhaustive_points, c.sampled_points
        ),
    );
    row(
        &mut h,
        "time",
        &format!(
            "{:.1} s, {:.0} states/s with {} job(s); stopped: {}",
            r.elapsed_s,
            r.states_per_s,
            r.jobs,
            escape(&r.stopped)
        ),
    );
    for n in &r.notes {
        row(&mut h, "note", &escape(n));
    }
    h.push_str("</table>\n");

    let mut failing: BTreeMap<usize, Vec<&pmem_core::crash::Violation>> = BTreeMap::new();
    for v in &c.violations {
        failing.entry(v.point.index).or_default().push(v);
    }

    h.push_str("<h2>Timeline of the crash points</h2>\n");
    h.push_str(&timeline(r, &failing));

    h.push_str("<h2>Failing crash points</h2>\n");
    if failing.is_empty() {
        h.push_str("<p class=\"ok\">None.</p>\n");
    } else {
        h.push_str(
            "<table><tr><th>point</th><th>state of the run</th><th>violations kept</th><th>first message</th></tr>\n",
        );
        for (p, vs) in &failing {
            let _ = writeln!(
                h,
                "<tr><td>{p}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&describe_point(&vs[0].point)),
                vs.len(),
                escape(&vs[0].message)
            );
        }
        h.push_str("</table>\n");
        if c.violations_total as usize > c.violations.len() {
            let _ = writeln!(
                h,
                "<p class=\"muted\">{} violation(s) in all; the first {} are kept.</p>",
                c.violations_total,
                c.violations.len()
            );
        }
    }

    h.push_str("<h2>Minimal counterexample</h2>\n");
    match &c.counterexample {
        None if c.violations_total == 0 => h.push_str("<p class=\"ok\">None: no violation.</p>\n"),
        None => h.push_str("<p>Not shrunk (shrinking was switched off).</p>\n"),
        Some(cx) => {
            let m = &cx.minimal;
            h.push_str("<table>");
            row(&mut h, "crash point", &format!("{} ({})", m.point.index, escape(&describe_point(&m.point))));
            row(&mut h, "pages that reached the disk", &escape(&describe_pages(m)));
            row(&mut h, "checker says", &format!("<code>{}</code>", escape(&m.message)));
            row(
                &mut h,
                "shrunk",
                &format!(
                    "from {} page(s) ({}) in {} checker run(s)",
                    cx.from.persisted.len(),
                    escape(&describe_pages(&cx.from)),
                    cx.steps
                ),
            );
            if let Some(p) = &r.counterexample_image {
                row(&mut h, "image file", &format!("<code>{}</code>", escape(&p.display().to_string())));
            }
            h.push_str("</table>\n<p class=\"muted\">Every other page holds its durable content (what completed flushes made durable); leaving any listed page out makes the image consistent.</p>\n");
        }
    }

    h.push_str("<h2>States explored per crash point</h2>\n");
    h.push_str(&states_plot(r, &failing));

    if !c.violations.is_empty() {
        h.push_str("<h2>Violations</h2>\n<table><tr><th>point</th><th>pages beyond the durable image</th><th>message</th></tr>\n");
        for v in &c.violations {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                v.point.index,
                escape(&describe_pages(v)),
                escape(&v.message)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<p class=\"muted\">Generated by pmemlab explore.</p>\n</body></html>\n");
    h
}

const W: f64 = 1040.0;
const LEFT: f64 = 50.0;
const RIGHT: f64 = 15.0;

fn x_of(i: usize, n: usize) -> f64 {
    if n <= 1 {
        LEFT + (W - LEFT - RIGHT) / 2.0
    } else {
        LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64
    }
}

fn timeline(r: &ExploreReport, failing: &BTreeMap<usize, Vec<&pmem_core::crash::Violation>>) -> String {
    let n = r.points.len();
    let mut s = String::new();
    let _ = writeln!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {W} 150\" role=\"img\" aria-label=\"timeline of crash points\">");
    let _ = writeln!(s, "<line x1=\"{LEFT}\" y1=\"70\" x2=\"{}\" y2=\"70\" stroke=\"#98a2b3\"/>", W - RIGHT);
    let mut prev = None;
    for p in &r.points {
        let x = x_of(p.index, n);
        let (wrote, durable, acked) = match prev {
            None => (false, false, false),
            Some(q) => {
                let q: &pmem_core::crash::CrashPoint = q;
                (p.writes_done > q.writes_done, p.durable_upto > q.durable_upto, p.acked_flushes > q.acked_flushes)
            }
        };
        let tip = escape(&format!("point {}: {}", p.index, describe_point(p)));
        if wrote {
            let _ = writeln!(s, "<line x1=\"{x:.1}\" y1=\"58\" x2=\"{x:.1}\" y2=\"82\" stroke=\"#475467\"><title>{tip}: a write</title></line>");
        }
        if durable {
            let _ = writeln!(s, "<circle cx=\"{x:.1}\" cy=\"45\" r=\"4\" fill=\"#17803d\"><title>{tip}: the durability frontier advanced</title></circle>");
        }
        if acked {
            let _ = writeln!(s, "<rect x=\"{:.1}\" y=\"91\" width=\"7\" height=\"7\" fill=\"#2563eb\"><title>{tip}: a flush returned 0</title></rect>", x - 3.5);
        }
        if let Some(vs) = failing.get(&p.index) {
            let _ = writeln!(
                s,
                "<path d=\"M{:.1} 112 l8 8 m0 -8 l-8 8\" stroke=\"#c0262d\" stroke-width=\"2.5\"><title>{tip}: {} violation(s), e.g. {}</title></path>",
                x - 4.0,
                vs.len(),
                escape(&vs[0].message)
            );
        }
        prev = Some(p);
    }
    let _ = writeln!(s, "<text x=\"{LEFT}\" y=\"20\" font-size=\"12\" fill=\"#475467\">| write   <tspan fill=\"#17803d\">● durable frontier advances</tspan>   <tspan fill=\"#2563eb\">■ flush acked</tspan>   <tspan fill=\"#c0262d\">✕ violation</tspan></text>");
    let _ = writeln!(s, "<text x=\"{LEFT}\" y=\"142\" font-size=\"11\" fill=\"#667085\">point 0</text>");
    if n > 1 {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"142\" font-size=\"11\" fill=\"#667085\" text-anchor=\"end\">point {}</text>",
            W - RIGHT,
            n - 1
        );
    }
    s.push_str("</svg>\n");
    s
}

fn states_plot(r: &ExploreReport, failing: &BTreeMap<usize, Vec<&pmem_core::crash::Violation>>) -> String {
    let per = &r.campaign.per_point;
    let n = per.len().max(1);
    let max = per.iter().copied().max().unwrap_or(0).max(1);
    let (top, bottom) = (20.0, 200.0);
    let mut s = String::new();
    let _ = writeln!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {W} 240\" role=\"img\" aria-label=\"states explored per crash point\">");
    let bw = ((W - LEFT - RIGHT) / n as f64).max(0.5);
    for (i, &k) in per.iter().enumerate() {
        if k == 0 {
            continue;
        }
        let hgt = (bottom - top) * k as f64 / max as f64;
        let x = LEFT + bw * i as f64;
        let fill = if failing.contains_key(&i) { "#c0262d" } else { "#5b7bd5" };
        let _ = writeln!(
            s,
            "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{hgt:.2}\" fill=\"{fill}\"><title>point {i}: {k} state(s)</title></rect>",
            bottom - hgt,
            (bw * 0.85).max(0.5)
        );
    }
    let _ =
        writeln!(s, "<line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#475467\"/>", W - RIGHT);
    let _ = writeln!(s, "<line x1=\"{LEFT}\" y1=\"{top}\" x2=\"{LEFT}\" y2=\"{bottom}\" stroke=\"#475467\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#475467\">{max}</text>",
        LEFT - 4.0,
        top + 4.0
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{bottom}\" font-size=\"11\" text-anchor=\"end\" fill=\"#475467\">0</text>",
        LEFT - 4.0
    );
    let _ = writeln!(s, "<text x=\"{LEFT}\" y=\"225\" font-size=\"11\" fill=\"#667085\">crash point 0</text>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"225\" font-size=\"11\" fill=\"#667085\" text-anchor=\"end\">crash point {}</text>",
        W - RIGHT,
        n - 1
    );
    let _ = writeln!(s, "<text x=\"{}\" y=\"225\" font-size=\"11\" fill=\"#667085\" text-anchor=\"middle\">states checked per crash point (red: violations found there)</text>", W / 2.0);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_html_would_interpret() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
