// The mountinfo parser lives in platform/mountinfo.ts (the receiver needs it
// too); discovery keeps importing it from here.
export { mountOption, parseMountinfo, type MountEntry } from '../../platform/mountinfo.js';
