//! `pmemlab serve`: serves the built browser visualizer on 127.0.0.1.
//!
//! A small static-file server (GET and HEAD only) for the site that
//! `scripts/build-web.sh` writes to `target/site`. It binds to loopback only,
//! refuses paths that leave the site directory, and answers one request per
//! connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

/// The content type of a file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Maps a request target to a file under `root`, or `None` when it would
/// leave `root`.
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let mut out = root.to_path_buf();
    for part in Path::new(path.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    Some(out)
}

fn answer(root: &Path, stream: &mut TcpStream) -> std::io::Result<()> {
    let mut line = String::new();
    BufReader::new(&*stream).read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let reply = |stream: &mut TcpStream, status: &str, ctype: &str, body: &[u8], head: bool| {
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        if !head {
            stream.write_all(body)?;
        }
        stream.flush()
    };
    if method != "GET" && method != "HEAD" {
        return reply(stream, "405 Method Not Allowed", "text/plain", b"only GET and HEAD\n", false);
    }
    match resolve(root, target).and_then(|p| std::fs::read(&p).ok().map(|b| (p, b))) {
        Some((p, body)) => reply(stream, "200 OK", content_type(&p), &body, method == "HEAD"),
        None => reply(stream, "404 Not Found", "text/plain", b"not found\n", method == "HEAD"),
    }
}

/// Serves `root` on `127.0.0.1:port` until the process is stopped. Fails
/// with one line when the site is missing or the port is taken.
pub fn serve(root: &Path, port: u16) -> Result<(), String> {
    if !root.join("index.html").is_file() {
        return Err(format!(
            "{} holds no built site (no index.html); build it with ./scripts/build-web.sh",
            root.display()
        ));
    }
    let listener =
        TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("pmemlab visualizer: http://{addr}/   (Ctrl-C stops)");
    for stream in listener.incoming() {
        match stream {
            Ok(mut s) => {
                if let Err(e) = answer(root, &mut s) {
                    eprintln!("pmemlab serve: {e}");
                }
            }
            Err(e) => eprintln!("pmemlab serve: {e}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_site() {
        let root = Path::new("/srv/site");
        assert_eq!(resolve(root, "/a/b.js?x=1"), Some(PathBuf::from("/srv/site/a/b.js")));
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(content_type(Path::new("x.wasm")), "application/wasm");
    }
}
