// PNG input/output for the stego engine: cheap header gate, decode to a Raster in the image's own
// layout, fast parallel encode, ancillary chunks carried over.
export { readHeader, assertWithinPixelLimit } from './header.js';
export { decodePng, decodePngStreamed, type DecodeOptions } from './decode.js';
export { encodePng } from './encode.js';
