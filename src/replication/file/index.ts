// File-level replication (MIGRATE_FILE): copies a mounted file system as
// files. The parts, each in its own file:
//   walker.ts       sorted depth-first walk of one root, one file system, excludes applied,
//                   directories listed on worker threads, as manifest lines
//   excludes.ts     default excludes a migration needs + configured globs
//   manifest.ts     the streamed local manifest of the last pass
//   delta.ts        the sorted merge of the last manifest against the walk
//   tar-producer.ts the pax tar stream of a pass (sparse ranges, hard links, patches)
//   tar-format.ts   the pax tar dialect both sides speak
//   pieces.ts       fixed-offset piece hashes for large files; sparse data ranges
//   xattrs.ts       extended attributes and POSIX ACLs (xattrs-linux.ts;
//                   xattrs-windows.ts: none), loaded lazily per platform
// The receiver's side is src/receiver/file-extractor.ts. This folder never
// opens sockets and never writes to the source tree; it writes only its
// own manifest.

export { Walker, type WalkOptions } from './walker.js';
export { TarProducer, type ProduceOptions, type ProduceStats, type RemoteHashes } from './tar-producer.js';
export { DEFAULT_EXCLUDED_CONTENTS, defaultExcludedPaths } from './excludes.js';
