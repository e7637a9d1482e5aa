//! The state of the view in a URL fragment, so that a link reproduces what
//! a teacher sees: the scenario (a built-in lesson by id, or the scenario
//! JSON itself, base64url-encoded), the seed, the step, and the selected
//! device and page.
//!
//! `#lesson=why-fsync&seed=1&step=3&dev=nv1&page=0`
//! `#scenario=eyJ2ZXJzaW9uIjox…&seed=7&step=2`

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pmem_core::budget::Budget;

/// Where the scenario of a link comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A built-in lesson, by id.
    Lesson(String),
    /// Scenario JSON.
    Scenario(String),
    /// The bench page.
    Bench,
}

/// What a link holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The scenario.
    pub source: Source,
    /// The seed (when it overrides the scenario's).
    pub seed: Option<u64>,
    /// Steps run.
    pub step: usize,
    /// The selected device.
    pub device: Option<String>,
    /// The selected page.
    pub page: Option<u64>,
}

impl Link {
    /// The fragment, without the leading `#`.
    pub fn to_fragment(&self) -> String {
        let mut parts = Vec::new();
        match &self.source {
            Source::Lesson(id) => parts.push(format!("lesson={}", escape(id))),
            Source::Scenario(json) => parts.push(format!("scenario={}", base64url_encode(json.as_bytes()))),
            Source::Bench => return "bench".to_string(),
        }
        if let Some(seed) = self.seed {
            parts.push(format!("seed={seed}"));
        }
        parts.push(format!("step={}", self.step));
        if let Some(d) = &self.device {
            parts.push(format!("dev={}", escape(d)));
        }
        if let Some(p) = self.page {
            parts.push(format!("page={p}"));
        }
        parts.join("&")
    }

    /// Reads a fragment (with or without `#`). `Ok(None)` for an empty one.
    /// A fragment longer than the tab's input limit
    /// ([`Budget::input_limit`], 16 MiB) is refused before it is decoded.
    pub fn parse(fragment: &str) -> Result<Option<Link>, String> {
        Budget::browser().check_input("the link", fragment.len() as u64).map_err(|e| e.to_string())?;
        let f = fragment.strip_prefix('#').unwrap_or(fragment);
        if f.is_empty() {
            return Ok(None);
        }
        if f == "bench" {
            return Ok(Some(Link { source: Source::Bench, seed: None, step: 0, device: None, page: None }));
        }
        let mut source = None;
        let mut link = Link { source: Source::Bench, seed: None, step: 0, device: None, page: None };
        for part in f.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("link part \"{part}\" has no '='"))?;
            let num = |what: &str| v.parse::<u64>().map_err(|_| format!("link: {what} \"{v}\" is not a whole number"));
            match k {
                "lesson" => source = Some(Source::Lesson(unescape(v)?)),
                "scenario" => {
                    let bytes = base64url_decode(v)?;
                    let json = String::from_utf8(bytes).map_err(|_| "link: the scenario is not UTF-8".to_string())?;
                    source = Some(Source::Scenario(json));
                }
                "seed" => link.seed = Some(num("seed")?),
                "step" => link.step = num("step")? as usize,
                "dev" => link.device = Some(unescape(v)?),
                "page" => link.page = Some(num("page")?),
                _ => {} // Unknown parts are ignored: links from newer versions still open.
            }
        }
        link.source = source.ok_or("link: it names neither a lesson nor a scenario")?;
        Ok(Some(link))
    }
}

/// What a lesson id or device name keeps unescaped in a link: letters,
/// digits, `-`, `_` and `.` (everything else is `%XX`, as before).
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

fn escape(s: &str) -> String {
    utf8_percent_encode(s, ESCAPED).to_string()
}

fn unescape(s: &str) -> Result<String, String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| format!("link: \"{s}\" is not UTF-8 once unescaped"))
}

/// Base64url without padding (RFC 4648 §5), as links have always used.
/// Decoding also takes padding, so older or hand-made links still open.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64url without padding (RFC 4648 §5).
pub fn base64url_encode(data: &[u8]) -> String {
    BASE64URL.encode(data)
}

/// Decodes base64url (padding and the standard alphabet's `+/` accepted).
pub fn base64url_decode(text: &str) -> Result<Vec<u8>, String> {
    let url_safe = text.replace('+', "-").replace('/', "_");
    BASE64URL.decode(url_safe).map_err(|e| format!("link: the scenario is not base64url text ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).collect();
        for n in 0..40 {
            let enc = base64url_encode(&data[..n]);
            assert!(!enc.contains('=') && !enc.contains('+') && !enc.contains('/'));
            assert_eq!(base64url_decode(&enc).unwrap(), &data[..n]);
        }
        assert_eq!(base64url_encode(b"hello"), "aGVsbG8");
        assert!(base64url_decode("a b").is_err());
        // Padded and standard-alphabet text, which the old decoder took.
        assert_eq!(base64url_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64url_decode("-_+/").unwrap(), base64url_decode("-_-_").unwrap());
        assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn names_escape_as_old_links_did() {
        assert_eq!(escape("why-fsync_2.a"), "why-fsync_2.a");
        assert_eq!(escape("a b&=ä"), "a%20b%26%3D%C3%A4");
        assert_eq!(unescape("a%20b%26%3D%C3%A4").unwrap(), "a b&=ä");
        assert!(unescape("%FF").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn links_round_trip() {
        let links = [
            Link {
                source: Source::Lesson("why-fsync".into()),
                seed: Some(7),
                step: 3,
                device: Some("nv1".into()),
                page: Some(12),
            },
            Link {
                source: Source::Scenario("{\"version\":1,\"name\":\"ä & =\"}".into()),
                seed: None,
                step: 0,
                device: None,
                page: None,
            },
            Link { source: Source::Bench, seed: None, step: 0, device: None, page: None },
        ];
        for l in links {
            let f = l.to_fragment();
            assert_eq!(Link::parse(&format!("#{f}")).unwrap(), Some(l.clone()), "{f}");
        }
        assert_eq!(Link::parse("#").unwrap(), None);
    }

    #[test]
    fn bad_links_say_what_is_wrong() {
        assert!(Link::parse("#step=2").unwrap_err().contains("neither"));
        assert!(Link::parse("#lesson=x&step=two").unwrap_err().contains("step"));
        assert!(Link::parse("#scenario=%%").unwrap_err().contains("base64url"));
        assert!(Link::parse("#lesson=x&future=1").is_ok());
    }
}
