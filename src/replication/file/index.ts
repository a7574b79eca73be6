// File-level replication (MIGRATE_FILE): copies a mounted file system as
// files. The parts, each in its own file:
//   entry.ts        one file-system entry as walker, manifest and tar stream see it
//   walker.ts       sorted depth-first walk of one root, one file system, excludes applied,
//                   directories listed on worker threads, as manifest lines
//   excludes.ts     default excludes a migration needs + configured globs
//   manifest.ts     the streamed local manifest of the last pass
//   delta.ts        the sorted merge of the last manifest against the walk
//   small-file-reader.ts  small files read whole on worker threads, in batches
//   tar-producer.ts the pax tar stream of a pass (sparse ranges, hard links, patches)
//   pass.ts         one pass of one root to one receiver target
// What the receiver reads the same way lives in src/protocol/: the pax tar
// dialect (tar-format.ts), the byte-path codec (paths.ts), piece hashes of
// large files and sparse ranges (file-pieces.ts) and the file frames
// (file-frames.ts); extended attributes and POSIX ACLs are
// src/platform/xattrs.ts. The receiver's side is src/receiver/file-session.ts
// and file-extractor.ts. Only pass.ts talks to the receiver (through
// ../session/); nothing here writes to the source tree, and the folder
// writes only its own manifests.

export { Walker, type WalkOptions } from './walker.js';
export { TarProducer, type ProduceOptions, type ProduceStats, type RemoteHashes } from './tar-producer.js';
export { DEFAULT_EXCLUDED_CONTENTS, defaultExcludedPaths } from './excludes.js';
