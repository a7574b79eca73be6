// throttle/ owns how fast a task may put bytes on the wire: time-of-day
// speed-limit rules (parse, validate, pick the segment by local time), the
// shared token bucket (a ByteGate), the per-minute rule refresher, the
// over-speed guard and the `--limit` / `--schedule` options. It never talks
// to the control plane or sockets itself: fetching rules, stopping a task
// and counting wire bytes come in as functions from the caller.

export * from './clock.js';
export * from './speed-schedule.js';
export * from './token-bucket.js';
export * from './scheduled-gate.js';
export * from './rule-refresher.js';
export * from './over-speed.js';
export * from './limit-options.js';
export * from './task-throttle.js';
