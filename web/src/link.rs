//! The state of the view in a URL fragment, so that a link reproduces what
//! a teacher sees: the scenario (a built-in lesson by id, or the scenario
//! JSON itself, base64url-encoded), the seed, the step, and the selected
//! device and page.
//!
//! `#lesson=why-fsync&seed=1&step=3&dev=nv1&page=0`
//! `#scenario=eyJ2ZXJzaW9uIjox…&seed=7&step=2`

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
    pub fn parse(fragment: &str) -> Result<Option<Link>, String> {
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

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("link: a '%' escape is cut short")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("link: \"%{hex}\" is not an escape"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "link: an escaped value is not UTF-8".to_string())
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5).
pub fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes base64url (padding and the standard alphabet's `+/` accepted).
pub fn base64url_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return Err(format!("link: '{}' is not a base64url character", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
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
