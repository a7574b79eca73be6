// The boot tests' small Debian 12 server image: the recipe, cache and lock
// live in src/demo/server-image.ts (shared with `ferry demo --system`); this
// file only names them for the tests.
export {
  SERVER_IMAGE_TOOLS as DEBIAN_IMAGE_TOOLS,
  serverImage as debianImage,
  type ImageVariant,
  type ServerImage as DebianImage,
} from '../../src/demo/server-image.js';
