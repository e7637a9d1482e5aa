//! The travelling token of the system diagram: a requestAnimationFrame
//! loop that moves it along the way points of the events just shown,
//! writing only its `transform` attribute (no yew render per frame).
//! With `prefers-reduced-motion: reduce` nothing travels: the token is
//! drawn where the last event happened, and the diagram's highlight says
//! the rest.

use gloo::render::{request_animation_frame, AnimationFrame};
use std::cell::RefCell;
use std::rc::Rc;

/// Time a token takes between two way points, in milliseconds.
pub const SEGMENT_MS: f64 = 260.0;
/// The longest travel, whatever the number of way points.
pub const MAX_TRAVEL_MS: f64 = 1600.0;

#[derive(Default)]
struct Travel {
    points: Vec<(f64, f64)>,
    start: Option<f64>,
    duration: f64,
    frame: Option<AnimationFrame>,
}

/// Moves the element `#token` of the diagram.
#[derive(Clone, Default)]
pub struct Animator {
    travel: Rc<RefCell<Travel>>,
}

/// True when the user asked for reduced motion.
pub fn reduced_motion() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(prefers-reduced-motion: reduce)").ok().flatten())
        .is_some_and(|m| m.matches())
}

fn set_position(x: f64, y: f64) {
    let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("token")) else {
        return;
    };
    let _ = el.set_attribute("transform", &format!("translate({x:.1},{y:.1})"));
}

/// The point at fraction `t` (0–1) of a path through `points`, each
/// segment taking the same time.
pub fn along(points: &[(f64, f64)], t: f64) -> (f64, f64) {
    match points {
        [] => (0.0, 0.0),
        [p] => *p,
        _ => {
            let segments = (points.len() - 1) as f64;
            let at = (t.clamp(0.0, 1.0) * segments).min(segments - 1e-9);
            let i = at.floor() as usize;
            let f = at - i as f64;
            // Ease in and out on every segment.
            let f = f * f * (3.0 - 2.0 * f);
            let (a, b) = (points[i], points[i + 1]);
            (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f)
        }
    }
}

fn frame(travel: Rc<RefCell<Travel>>, now: f64) {
    let (pos, done) = {
        let mut t = travel.borrow_mut();
        let start = *t.start.get_or_insert(now);
        let f = if t.duration > 0.0 { (now - start) / t.duration } else { 1.0 };
        (along(&t.points, f), f >= 1.0)
    };
    set_position(pos.0, pos.1);
    let next = (!done).then(|| {
        let again = travel.clone();
        request_animation_frame(move |ts| frame(again, ts))
    });
    travel.borrow_mut().frame = next;
}

impl Animator {
    /// Moves the token through `points` (the last one is where the yew view
    /// draws it), at most `max_ms` long; at once under reduced motion.
    pub fn travel(&self, points: Vec<(f64, f64)>, max_ms: f64) {
        let Some(&last) = points.last() else { return };
        if points.len() < 2 || reduced_motion() {
            self.stop();
            set_position(last.0, last.1);
            return;
        }
        let duration = (SEGMENT_MS * (points.len() - 1) as f64).min(max_ms.min(MAX_TRAVEL_MS));
        {
            let mut t = self.travel.borrow_mut();
            *t = Travel { points, start: None, duration, frame: None };
        }
        let travel = self.travel.clone();
        let f = request_animation_frame(move |ts| frame(travel, ts));
        self.travel.borrow_mut().frame = Some(f);
    }

    /// Stops a travel (the token stays where yew draws it).
    pub fn stop(&self) {
        self.travel.borrow_mut().frame = None;
    }
}
