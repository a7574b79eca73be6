// Booting an image under qemu and waiting for its marker: the code lives in
// src/demo/qemu-boot.ts (shared with `ferry demo --system`); this file only
// names it for the tests.
export { OVMF_CODE, QEMU, bootAndWaitForMarker, type BootMarker, type BootOptions, type BootResult } from '../../src/demo/qemu-boot.js';
