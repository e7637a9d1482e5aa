//! Progressive disclosure: the beginner view (the diagram, the grid and
//! six controls) and the expert view (every panel), and the link part
//! that opens either (`view=expert` or `view=beginner`, next to the parts
//! [`crate::link`] reads, which ignores it).

/// Which panels are shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Level {
    /// The diagram, the grid and the six controls of [`BEGINNER_CONTROLS`].
    #[default]
    Beginner,
    /// Every panel: knobs, modes, hot-plug, import and export, the rings'
    /// bytes, the crash explorer.
    Expert,
}

/// The controls of the beginner view, by element id, in order.
pub const BEGINNER_CONTROLS: [&str; 6] =
    ["btn-quick-write", "btn-fsync", "btn-power", "btn-back", "btn-forward", "btn-play"];

impl Level {
    /// The link value.
    pub fn key(self) -> &'static str {
        match self {
            Level::Beginner => "beginner",
            Level::Expert => "expert",
        }
    }

    /// The level a fragment asks for (`None`: it does not say), and the
    /// fragment without that part.
    pub fn split_fragment(fragment: &str) -> (Option<Level>, String) {
        let f = fragment.strip_prefix('#').unwrap_or(fragment);
        let mut level = None;
        let rest: Vec<&str> = f
            .split('&')
            .filter(|part| match part.strip_prefix("view=") {
                Some("expert") => {
                    level = Some(Level::Expert);
                    false
                }
                Some(_) => {
                    level = Some(Level::Beginner);
                    false
                }
                None => true,
            })
            .collect();
        (level, rest.join("&"))
    }

    /// `fragment` with this level's part appended (the beginner view, the
    /// default, adds nothing).
    pub fn with_fragment(self, fragment: &str) -> String {
        match (self, fragment.is_empty()) {
            (Level::Beginner, _) => fragment.to_string(),
            (Level::Expert, true) => "view=expert".to_string(),
            (Level::Expert, false) => format!("{fragment}&view=expert"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Link;

    #[test]
    fn the_view_part_round_trips_and_leaves_the_rest_to_the_link() {
        let (l, rest) = Level::split_fragment("#lesson=why-fsync&step=2&view=expert");
        assert_eq!(l, Some(Level::Expert));
        assert_eq!(rest, "lesson=why-fsync&step=2");
        assert_eq!(Link::parse(&rest).unwrap().unwrap().step, 2);
        assert_eq!(Level::split_fragment("view=expert"), (Some(Level::Expert), String::new()));
        assert_eq!(Level::split_fragment("view=beginner&step=1").0, Some(Level::Beginner));
        assert_eq!(Level::split_fragment("#step=1"), (None, "step=1".to_string()));
        assert_eq!(Level::Expert.with_fragment(&rest), "lesson=why-fsync&step=2&view=expert");
        assert_eq!(Level::Expert.with_fragment(""), "view=expert");
        assert_eq!(Level::Beginner.with_fragment(&rest), rest);
        assert_eq!(BEGINNER_CONTROLS.len(), 6);
    }
}
