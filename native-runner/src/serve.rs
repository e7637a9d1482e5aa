//! `pmemlab serve`: serves the built browser visualizer on 127.0.0.1.
//!
//! The site is the directory `scripts/build-web.sh` writes (`target/site`):
//! content-hashed assets with a gzip (`.gz`) and a brotli (`.br`) copy next
//! to each. Files are served by tower-http's [`ServeDir`], which picks the
//! precompressed copy the browser accepts (with the `Content-Encoding` it
//! is in), sets `Content-Type` from the extension, answers ranges and
//! conditional requests, and refuses paths that leave the site.
//! This module adds what the site needs on top: the listener on loopback
//! only, the port rule, and the caching headers ([`cache_control`],
//! `Vary: Accept-Encoding`).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use axum::extract::Request;
use axum::http::header::{HeaderValue, CACHE_CONTROL, VARY};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::services::ServeDir;

/// How many ports after the asked one are tried when it is taken.
pub const PORT_TRIES: u16 = 50;

/// Why the site cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The directory holds no `index.html`.
    #[error("{} holds no built site (no index.html); build it with ./scripts/build-web.sh", .0.display())]
    NoSite(PathBuf),
    /// The asked port and the ones after it are all taken.
    #[error("cannot listen on 127.0.0.1: ports {first} to {last} are all taken or refused ({source}); pick another with --port or PMEMLAB_PORT")]
    NoFreePort {
        /// The asked port.
        first: u16,
        /// The last port tried.
        last: u16,
        /// Why the last one failed.
        source: std::io::Error,
    },
    /// The server itself failed.
    #[error("the server stopped: {0}")]
    Server(#[from] std::io::Error),
}

/// The `Cache-Control` of a response for a request path: assets named with
/// a content hash (`name-0123456789abcdef.ext`, see [`is_fingerprinted`])
/// never change under their name and may be kept for a year; everything
/// else (`index.html` above all, which names the current assets) is checked
/// with the server on every load (`Last-Modified` / `If-Modified-Since`).
pub fn cache_control(path: &str) -> &'static str {
    if is_fingerprinted(path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// Whether the file name of `path` ends in `-` and 16 hex digits before its
/// extension, as `scripts/build-web.sh` names the assets it hashes.
pub fn is_fingerprinted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    let stem = name.split('.').next().unwrap_or("");
    // `pmem_web_bg-<hash>.wasm`: the hash ends the part before the first dot.
    match stem.rsplit_once('-') {
        Some((_, hash)) => hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// Adds `Cache-Control` ([`cache_control`]) and `Vary: Accept-Encoding`
/// (any file may have a compressed copy, so caches must key on the
/// encoding) to the answers that carry a file.
async fn caching_headers(request: Request, next: Next) -> Response {
    let value = cache_control(request.uri().path());
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status().as_u16() == 304 {
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// The site under `root` as an axum router: static files (precompressed
/// copies preferred, brotli over gzip) with caching headers.
pub fn router(root: &Path) -> Router {
    let files = ServeDir::new(root).precompressed_br().precompressed_gzip();
    Router::new().fallback_service(files).layer(middleware::from_fn(caching_headers))
}

/// Binds `127.0.0.1:port`, or the first free of the [`PORT_TRIES`] ports
/// after it when it is taken; port 0 takes any free port.
pub fn bind_loopback(port: u16) -> Result<TcpListener, ServeError> {
    let last = if port == 0 { 0 } else { port.saturating_add(PORT_TRIES - 1) };
    let mut error = None;
    for p in port..=last {
        match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, p))) {
            Ok(listener) => return Ok(listener),
            Err(e) => error = Some(e),
        }
    }
    let source = error.unwrap_or_else(|| std::io::Error::other("no port tried"));
    Err(ServeError::NoFreePort { first: port, last, source })
}

/// Serves `root` on 127.0.0.1 (the port rule of [`bind_loopback`]) until
/// the process is stopped. Prints the URL first.
pub fn serve(root: &Path, port: u16) -> Result<(), ServeError> {
    if !root.join("index.html").is_file() {
        return Err(ServeError::NoSite(root.to_path_buf()));
    }
    let listener = bind_loopback(port)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    println!("pmemlab visualizer: http://{addr}/   (benchmark: http://{addr}/bench.html; Ctrl-C stops)");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, router(root)).await
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_assets_are_cached_for_good_and_pages_revalidated() {
        assert_eq!(cache_control("/pmem_web_bg-0123456789abcdef.wasm"), "public, max-age=31536000, immutable");
        assert_eq!(cache_control("/style-fedcba9876543210.css.gz"), "public, max-age=31536000, immutable");
        assert_eq!(cache_control("/"), "no-cache");
        assert_eq!(cache_control("/index.html"), "no-cache");
        assert_eq!(cache_control("/bench.html"), "no-cache");
        // 15 digits, or not hex: not a hash.
        assert_eq!(cache_control("/style-0123456789abcde.css"), "no-cache");
        assert_eq!(cache_control("/pmem-web-0123456789abcdeg.js"), "no-cache");
    }

    #[test]
    fn a_taken_port_moves_to_the_next_free_one() {
        let first = bind_loopback(0).unwrap();
        let port = first.local_addr().unwrap().port();
        if port >= u16::MAX - PORT_TRIES {
            return; // No room after it to try.
        }
        let second = bind_loopback(port).unwrap();
        let got = second.local_addr().unwrap();
        assert_eq!(got.ip(), Ipv4Addr::LOCALHOST);
        assert!(got.port() > port && got.port() < port + PORT_TRIES, "{got}");
    }
}
