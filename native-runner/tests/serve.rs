//! `pmemlab serve`: precompressed assets with the right headers, paths
//! outside the site refused, loopback only, a missing site refused.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const WASM: &str = "app-0123456789abcdef.wasm";

/// A response: status code, headers (lower-case names), body.
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn get(addr: SocketAddr, path: &str, accept_encoding: Option<&str>) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    let ae = accept_encoding.map(|e| format!("Accept-Encoding: {e}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{ae}Connection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply { status, headers, body: raw[split + 4..].to_vec() }
}

/// A site directory with a secret file next to it (outside it).
fn site(test: &str) -> (PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("pmemlab-serve-{test}-{}", std::process::id()));
    let root = base.join("site");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(base.join("secret.txt"), "outside the site").unwrap();
    std::fs::write(root.join("index.html"), "<h1>pmemlab</h1>").unwrap();
    std::fs::write(root.join(WASM), b"\0asm plain").unwrap();
    std::fs::write(root.join(format!("{WASM}.gz")), b"gzip copy").unwrap();
    std::fs::write(root.join(format!("{WASM}.br")), b"brotli copy").unwrap();
    (base, root)
}

fn start(root: &Path, port: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(["serve", "--port", port, "--dir"])
        .arg(root)
        .env_remove("PMEMLAB_PORT")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|s| s.split('/').next()).expect("a URL").parse().unwrap();
    (child, addr)
}

#[test]
fn serves_precompressed_assets_with_their_headers() {
    let (base, root) = site("headers");
    let (mut child, addr) = start(&root, "0");
    let br = get(addr, &format!("/{WASM}"), Some("gzip, br"));
    let gz = get(addr, &format!("/{WASM}"), Some("gzip"));
    let plain = get(addr, &format!("/{WASM}"), None);
    let index = get(addr, "/", Some("gzip, br"));
    let escapes =
        ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "//etc/passwd"].map(|p| get(addr, p, None));
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&base).ok();

    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_eq!((br.status, br.body.as_slice()), (200, &b"brotli copy"[..]));
    assert_eq!(br.headers["content-encoding"], "br");
    assert_eq!(br.headers["content-type"], "application/wasm");
    assert_eq!(br.headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(br.headers["vary"].to_ascii_lowercase().contains("accept-encoding"), "{:?}", br.headers);
    assert_eq!((gz.status, gz.body.as_slice()), (200, &b"gzip copy"[..]));
    assert_eq!(gz.headers["content-encoding"], "gzip");
    assert_eq!(gz.headers["content-type"], "application/wasm");
    assert_eq!((plain.status, plain.body.as_slice()), (200, &b"\0asm plain"[..]));
    assert!(!plain.headers.contains_key("content-encoding"), "{:?}", plain.headers);
    assert_eq!((index.status, index.body.as_slice()), (200, &b"<h1>pmemlab</h1>"[..]));
    assert!(index.headers["content-type"].starts_with("text/html"), "{:?}", index.headers);
    assert_eq!(index.headers["cache-control"], "no-cache");
    for e in escapes {
        assert!(e.status >= 400 && e.status < 500, "status {}", e.status);
        assert!(!String::from_utf8_lossy(&e.body).contains("outside the site"));
    }
}

#[test]
fn listens_on_127_0_0_1_only() {
    let (base, root) = site("loopback");
    let (mut child, addr) = start(&root, "0");
    let other = SocketAddr::from(([127, 0, 0, 2], addr.port()));
    let on_loopback = TcpStream::connect(addr).is_ok();
    let on_other = TcpStream::connect(other).is_ok();
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&base).ok();
    assert!(on_loopback);
    assert!(!on_other, "pmemlab serve also answers on {other}");
    // Negative control: 127.0.0.2 is reachable here, so the refusal above
    // comes from the server's bind address.
    let control = TcpListener::bind(other).unwrap();
    assert!(TcpStream::connect(control.local_addr().unwrap()).is_ok());
}

#[test]
fn a_taken_port_moves_on_and_a_missing_site_is_refused() {
    let (base, root) = site("port");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (mut child, addr) = start(&root, &port.to_string());
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&base).ok();
    assert!(addr.port() > port && addr.port() <= port + 50, "{addr} after {port}");

    let out = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(["serve", "--port", "0", "--dir", "/nonexistent-site"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no built site"), "{err}");
}
