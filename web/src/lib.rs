//! pmem-web: the browser visualizer of pmemlab.
//!
//! The app logic lives in plain modules that do not import yew and are
//! tested natively, like the model of yew's `game_of_life` example:
//! [`session`] (a scenario, a cursor and the machine there), [`grid`] (the
//! page-cache grid raster), [`rings`] (the virtqueue read from guest-memory
//! bytes), [`diagram`] (where each event happens in the drawn system),
//! [`hexview`], [`lessons`], [`link`] (state in the URL),
//! [`replay`] (event logs of the native runner), [`explorer`] (crash
//! campaigns) and [`mod@bench`]. The yew component (`app`, wasm32 only) turns
//! messages into calls on them and draws.

pub mod bench;
pub mod diagram;
pub mod disclosure;
pub mod explorer;
pub mod grid;
pub mod hexview;
pub mod lessons;
pub mod link;
pub mod palette;
pub mod replay;
pub mod rings;
pub mod session;
pub mod timeline;
pub mod workbench;

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
pub use app::start;
