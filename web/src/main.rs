//! Entry point of the browser visualizer. In wasm32 it starts the yew app
//! (scripts/build-web.sh builds it); natively it only says how to run it.

fn main() {
    #[cfg(target_arch = "wasm32")]
    pmem_web::start();
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("pmem-web runs in a browser: ./scripts/run.sh builds the site and serves it on 127.0.0.1");
}
