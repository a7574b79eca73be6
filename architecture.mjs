// ferry's architecture, as the import rules that keep it so. `npm test` runs
// `npm run check:imports`, which is dependency-cruiser reading this file:
// it fails on an import that goes up a layer, on an import between two
// folders of the same layer, on a folder that belongs to no layer, and on
// any import cycle. docs/architecture.md explains the layers and the data
// path; this file is what the check enforces.
//
// Read the layers from the bottom up: a folder may import from the layers
// below its own, never from a layer above, and never from another folder of
// its own layer (two siblings that need the same thing get it from below).
// Type-only imports count: a type is part of the design as much as a call.
//
// To add a folder: put it in the one layer whose folders it needs below it
// and whose folders need it above; the check fails until you do.

/** Bottom to top. `owns` is what a newcomer should expect to find there. */
const layers = [
  {
    layer: 'base',
    modules: {
      'errors/':
        'FerryError and its subclasses, and the typed set of every code ferry raises (the SMS codes of section 5.1 ' +
        'and its own FERRY_* codes), each with whether it is worth retrying',
      'version.ts': "the package's version, read once from package.json",
      'types/': 'ambient declarations for the compiler (no code)',
    },
  },
  {
    layer: 'platform',
    modules: {
      'platform/':
        'the operating system: exec with timeouts, atomic files, logging, service managers, ' +
        'process priority, xattrs, TLS identities; Linux and Windows files side by side',
    },
  },
  {
    layer: 'models',
    modules: {
      'sms/': 'the SMS v3 model both SMS ends share: zod schemas of the API bodies, the AK/SK signer (its error codes are in errors/)',
      'protocol/':
        'the agent-receiver wire format both ends stand on: frames, file frames, the frame channel, ' +
        'LZ4 codecs, the raw-or-LZ4 choice for a frame payload (compress.ts, on the LZ4 worker pool: ' +
        'both engines use it, so it lives below them), chunk hash, tar dialect, path codec, file pieces, buffer pools',
    },
  },
  {
    layer: 'layout',
    modules: {
      'layout/':
        'the whole-server layout both ends share: target disks, partitions, file systems, subvolumes, volume groups; ' +
        'its checks, LVM flattening, mapping from and to SMS target_server, and the system session\'s request/reply shapes (no I/O)',
    },
  },
  {
    layer: 'services',
    modules: {
      'config/':
        "the agent's configuration file and its defaults (it needs only errors/, but only the agent " +
        'and the CLI read it: engines and servers take options, never a config file)',
      'discovery/': 'what the machine is: an inventory snapshot and its mapping to the SMS source body',
      'sms-client/': 'the SMS v3 client: HTTPS transport, token and AK/SK auth, retries, proxies',
      'sms-server/': "the local SMS v3 control plane (`ferry control-plane`): HTTP server, routes, store",
      'replication/':
        "the sending side: block and file engines (passes), the agent's session to a receiver, " +
        'throttle (rate limits) and progress (reports)',
      'receiver/': 'the receiving side (`ferry receive`): TLS server, session kinds, target writers, manifests',
    },
  },
  {
    layer: 'flows',
    modules: {
      'migration/':
        'whole-server migration on the agent side: plan the target layout, open the system session, copy every volume ' +
        'with the replication engines, report steps (the CLI and the daemon both run it)',
    },
  },
  {
    layer: 'programs',
    modules: {
      'agent/': 'the daemon: command loop, task runner, persisted state; talks to the services through ports',
      'demo/': '`ferry demo`: the whole flow on one machine with real child processes',
    },
  },
  {
    layer: 'entry',
    modules: {
      'cli/': 'argument parsing and one file per subcommand, only wiring things up (cli/bin.ts is the entry point)',
    },
  },
];

/**
 * Inside replication/, the engines (block/, file/ and their session/) and the
 * hooks that take part in a pass (throttle/, progress/) do not import each
 * other: the engines see a throttle as a ByteGate and progress as a listener,
 * both shapes of replication/types.ts. The two engines, block/ and file/, do
 * not import each other either: what both need is in session/ (connect,
 * resume, window, commit, finish) or below, in protocol/ (frames, the
 * raw-or-LZ4 choice).
 */
const replicationParts = {
  engines: ['replication/block/', 'replication/file/', 'replication/session/'],
  hooks: ['replication/throttle/', 'replication/progress/'],
};

// ---------------------------------------------------------------------------
// The rules, derived from the tables above.

/** `^src/(a/|b\.ts$)`: a regular expression for modules under src/. */
function under(modules) {
  const alternatives = modules.map((m) => (m.endsWith('/') ? m : `${m}$`).replaceAll('.', '\\.'));
  return `^src/(${alternatives.join('|')})`;
}

const forbidden = [
  {
    name: 'no-cycle',
    comment: 'Modules import each other in one direction only; break a cycle by moving what both need into a module below them.',
    severity: 'error',
    from: { path: '^src/' },
    to: { circular: true },
  },
  {
    name: 'in-a-layer',
    comment: 'Every module under src/ belongs to a layer of architecture.mjs: add its folder to one.',
    severity: 'error',
    from: { path: '^src/', pathNot: under(layers.flatMap((l) => Object.keys(l.modules))) },
    to: {},
  },
  {
    name: 'in-a-layer-too',
    comment: 'Every module under src/ belongs to a layer of architecture.mjs: add its folder to one.',
    severity: 'error',
    from: {},
    to: { path: '^src/', pathNot: under(layers.flatMap((l) => Object.keys(l.modules))) },
  },
];

layers.forEach((l, i) => {
  const above = layers.slice(i + 1).flatMap((u) => Object.keys(u.modules));
  if (above.length > 0) {
    forbidden.push({
      name: `not-up-from-${l.layer}`,
      comment: `The ${l.layer} layer does not import from the layers above it (${layers.slice(i + 1).map((u) => u.layer).join(', ')}).`,
      severity: 'error',
      from: { path: under(Object.keys(l.modules)) },
      to: { path: under(above) },
    });
  }
  for (const m of Object.keys(l.modules)) {
    const siblings = Object.keys(l.modules).filter((s) => s !== m);
    if (siblings.length === 0) continue;
    forbidden.push({
      name: `not-sideways-from-${m.replace(/[/.]ts$|\/$/, '').replaceAll('/', '-')}`,
      comment: `${m} does not import its siblings in the ${l.layer} layer (${siblings.join(', ')}).`,
      severity: 'error',
      from: { path: under([m]) },
      to: { path: under(siblings) },
    });
  }
});

forbidden.push(
  {
    name: 'engines-not-to-hooks',
    comment: 'The engines see throttle/ and progress/ only through the shapes of replication/types.ts.',
    severity: 'error',
    from: { path: under(replicationParts.engines) },
    to: { path: under(replicationParts.hooks) },
  },
  {
    name: 'block-engine-not-to-file-engine',
    comment: 'block/ and file/ share session/ and protocol/, not each other.',
    severity: 'error',
    from: { path: '^src/replication/block/' },
    to: { path: '^src/replication/file/' },
  },
  {
    name: 'file-engine-not-to-block-engine',
    comment: 'file/ and block/ share session/ and protocol/, not each other.',
    severity: 'error',
    from: { path: '^src/replication/file/' },
    to: { path: '^src/replication/block/' },
  },
  {
    name: 'hooks-not-to-engines',
    comment: 'throttle/ and progress/ take part in a pass through replication/types.ts, not by importing an engine.',
    severity: 'error',
    from: { path: under(replicationParts.hooks) },
    to: { path: under(replicationParts.engines) },
  },
);

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden,
  options: {
    // Only ferry's own modules are checked; packages are leaves.
    includeOnly: '^src/',
    // Count `import type` too (resolved by the TypeScript compiler before it erases them).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
