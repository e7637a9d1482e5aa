//! Paints the page grid: the model renders RGBA pixels, the canvas gets
//! them in one `putImageData`.

use crate::grid::GridRenderer;
use crate::workbench::Workbench;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};
use yew::NodeRef;

/// Draws the workbench's grid into the canvas behind `node`.
pub fn draw(node: &NodeRef, renderer: &mut GridRenderer, bench: &Workbench) {
    let Some(canvas) = node.cast::<HtmlCanvasElement>() else { return };
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
