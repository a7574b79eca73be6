// progress/ owns what a task tells the control plane about a running copy:
// the aggregation of VolumeProgress snapshots from every volume into the
// body of PUT /v3/tasks/{id}/progress (table 4-172), host and agent resource
// figures, and the reporter that sends those bodies without ever slowing the
// copy. It does not talk HTTP itself (the caller passes `send`) and never
// touches the engines' internals: VolumeProgress is all it reads.

export * from './subtask-name.js';
export * from './rate-meter.js';
export * from './aggregator.js';
export * from './system-stats.js';
export * from './reporter.js';
