//! `pmemlab serve`: serves a built site on loopback; refuses a missing one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

#[test]
fn serves_the_site_and_refuses_a_missing_one() {
    let dir = std::env::temp_dir().join(format!("pmemlab-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>pmemlab</h1>").unwrap();
    std::fs::write(dir.join("app.wasm"), [0u8, 0x61, 0x73, 0x6d]).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(["serve", "--port", "0", "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|s| s.split('/').next()).unwrap().to_string();
    let get = |path: &str| {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).ok();
        out
    };
    let index = get("/");
    let wasm = get("/app.wasm");
    let escape = get("/../../etc/passwd");
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
    assert!(index.starts_with("HTTP/1.1 200") && index.contains("<h1>pmemlab</h1>"), "{index}");
    assert!(wasm.contains("Content-Type: application/wasm"), "{wasm}");
    assert!(escape.starts_with("HTTP/1.1 404"), "{escape}");

    let out = Command::new(env!("CARGO_BIN_EXE_pmemlab"))
        .args(["serve", "--port", "0", "--dir", "/nonexistent-site"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no built site"), "{err}");
}
