//! Paints the page grid: the model renders RGBA pixels, the canvas gets
//! them in one `putImageData`.

use crate::grid::{GridRenderer, PageMap, Viewport};
use crate::workbench::Workbench;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};
use yew::NodeRef;

/// What a canvas shows: drawn again only when this changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    map: PageMap,
    viewport: Viewport,
    page: Option<u64>,
    raster: (u32, u32),
    canvas: (u32, u32),
}

/// Draws the workbench's grid into the canvas behind `node`, unless
/// `drawn` says it shows that already.
pub fn draw(node: &NodeRef, renderer: &mut GridRenderer, bench: &Workbench, drawn: &mut Option<Drawn>) {
    let Some(canvas) = node.cast::<HtmlCanvasElement>() else { return };
    let now = Drawn {
        map: bench.map().clone(),
        viewport: bench.viewport(),
        page: bench.page(),
        raster: bench.raster(),
        canvas: (canvas.width(), canvas.height()),
    };
    if drawn.as_ref() == Some(&now) {
        return;
    }
    *drawn = Some(now);
    let layout = bench.layout();
    renderer.set_folio_pages(crate::grid::folio_pages(bench.map()));
    renderer.render(bench.map(), &bench.viewport(), &layout, bench.page());
    put(&canvas, renderer.rgba(), layout.width, layout.height);
}

/// Copies an RGBA raster of `width` × `height` pixels onto a canvas.
pub fn put(canvas: &HtmlCanvasElement, rgba: &[u8], width: u32, height: u32) {
    let Ok(Some(ctx)) = canvas.get_context("2d") else { return };
    let Ok(ctx) = ctx.dyn_into::<CanvasRenderingContext2d>() else { return };
    if let Ok(img) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), width, height) {
        let _ = ctx.put_image_data(&img, 0.0, 0.0);
    }
}
