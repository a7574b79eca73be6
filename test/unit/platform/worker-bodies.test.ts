// Every function ferry runs on worker threads must load there. A worker is
// started from the text of its body (the single executable has no worker
// files, see platform/worker-pool.ts), compiled alone: a name the body takes
// from outside itself (an import, a module-level constant) works on the main
// thread and fails only inside the worker. So each body's worker text is
// checked to name nothing that is not its own or a Node global (the
// TypeScript checker, over the text exactly as shipped), and each body is
// started once in a real worker thread and must give what it gives on this
// thread. No Worker is started in src/ except through that mechanism.

import { constants, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lanesBody, runInWorker, workerSource, WorkerPool, type PoolBody } from '../../../src/platform/worker-pool.js';
import { lz4CompressBody } from '../../../src/protocol/lz4-pool.js';
import { listerBody } from '../../../src/replication/file/walker.js';
import { passWorkersBody } from '../../../src/replication/file/pass-workers.js';
import { SMALL_FILE_FLAGS, smallFileBody } from '../../../src/replication/file/small-file-reader.js';
import { fileWriterBody } from '../../../src/receiver/file-writers.js';
import { excludeSpec } from '../../../src/replication/file/excludes.js';
import { lz4Decompress } from '../../../src/protocol/lz4-block.js';
import { lz4WasmModule } from '../../../src/protocol/lz4-wasm.js';

const REPO = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/**
 * The names a worker text uses without defining them, beyond what a Node
 * worker has (JavaScript and Node globals, require): what would throw a
 * ReferenceError in the worker, each with the line that uses it.
 */
function outsideNames(texts: Record<string, string>): Record<string, string[]> {
  const options: ts.CompilerOptions = {
    allowJs: true,
    checkJs: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    lib: ['lib.es2023.d.ts'],
    types: ['node'],
    typeRoots: [join(REPO, 'node_modules/@types')],
  };
  // Each text as a script of its own, wrapped in a function: its top-level names stay its own.
  const files = new Map(Object.entries(texts).map(([name, text]) => [join(REPO, `worker-${name.replace(/\W+/g, '-')}.js`), `(function () {\n${text}\n})();\n`]));
  // A global of Node that TypeScript declares only in its DOM libraries (which would bring window, name, status…).
  const globals = join(REPO, 'worker-globals.d.ts');
  const extra = new Map([[globals, 'declare var WebAssembly: any;\n']]);
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const own = (f: string) => files.get(f) ?? extra.get(f);
  host.getSourceFile = (f, v, ...rest) => (own(f) !== undefined ? ts.createSourceFile(f, own(f)!, v) : getSourceFile(f, v, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (f) => own(f) !== undefined || fileExists(f);
  const program = ts.createProgram([...files.keys(), globals], options, host);
  const out: Record<string, string[]> = {};
  Object.keys(texts).forEach((name, i) => {
    const file = program.getSourceFile([...files.keys()][i]!)!;
    out[name] = program
      .getSemanticDiagnostics(file)
      .filter((d) => /^Cannot find name/.test(ts.flattenDiagnosticMessageText(d.messageText, '\n')))
      .map((d) => {
        const { line } = file.getLineAndCharacterOfPosition(d.start!);
        return `${ts.flattenDiagnosticMessageText(d.messageText, ' ')} in: ${file.text.split('\n')[line]!.trim()}`;
      });
  });
  return out;
}

interface Case {
  // Any body: each case's init, task and result go together.
  body: PoolBody<any, any, any>;
  init: () => unknown;
  /** A task and the buffers it transfers (fresh each call: a transfer detaches them). */
  task: () => { task: unknown; transfer?: ArrayBuffer[] };
  /** The result in a comparable form (buffers as Buffers). */
  view: (result: unknown) => unknown;
}

let tree: string;
const text = Buffer.from('worker threads are started from source text\n'.repeat(4000));

const cases: Case[] = [
  {
    body: lz4CompressBody,
    init: () => ({ module: lz4WasmModule() }),
    task: () => {
      const input = new Uint8Array(text).buffer;
      return { task: { input, length: text.length }, transfer: [input] };
    },
    view: (r) => {
      const out = Buffer.from((r as { out: ArrayBuffer }).out);
      expect(lz4Decompress(out, text.length).equals(text)).toBe(true);
      return out;
    },
  },
  {
    body: listerBody,
    init: () => ({ root: Buffer.from(tree).toString('latin1'), dev: String(lstatSync(tree, { bigint: true }).dev), spec: excludeSpec(tree, { patterns: ['*.log'] }) }),
    task: () => ({ task: '' }),
    view: (r) => r,
  },
  {
    body: smallFileBody,
    init: () => ({ flags: constants.O_RDONLY | constants.O_NOFOLLOW }),
    task: () => ({ task: { paths: [join(tree, 'a file'), join(tree, 'gone'), join(tree, 'link')], sizes: [5, 3, 4] } }),
    view: (r) => (r as { data?: ArrayBuffer }[]).map((x) => ({ ...x, data: x.data && Buffer.from(x.data) })),
  },
  {
    body: fileWriterBody,
    init: () => ({ flags: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW }),
    // One file written and renamed into place, then one whose directory is missing: the error, and no temporary left.
    task: () => {
      const parts = [join(tree, 'sub/.tmp-w'), join(tree, 'sub/written'), 'body\n', join(tree, 'none/.tmp-x'), join(tree, 'none/x')].map((x) => Buffer.from(x));
      const buf = new Uint8Array(Buffer.concat(parts)).buffer;
      const at = (i: number) => parts.slice(0, i).reduce((n, b) => n + b.length, 0);
      const file = (i: number, data: number, dataLen: number) => [at(i), parts[i]!.length, at(i + 1), parts[i + 1]!.length, data, dataLen, 0o640, -1, -1, -1, 1_600_000_000, 0, -1];
      const files = Float64Array.from([...file(0, at(2), 5), ...file(3, at(5), 0)]);
      return { task: { buf, files }, transfer: [buf, files.buffer] };
    },
    view: (r) => {
      const { buf, ...rest } = r as { buf: ArrayBuffer };
      expect(readFileSync(join(tree, 'sub/written'), 'utf8')).toBe('body\n');
      expect(statSync(join(tree, 'sub/written')).mtimeMs).toBe(1_600_000_000_000);
      expect(readdirSync(join(tree, 'sub'))).toEqual(['written']);
      return { ...rest, bytes: buf.byteLength };
    },
  },
  {
    // A full file pass's threads (replication/file/pass-workers.ts): the three bodies above as lanes of one.
    body: lanesBody('file pass lanes', { list: listerBody, read: smallFileBody, lz4: lz4CompressBody }),
    init: () => ({
      list: { root: Buffer.from(tree).toString('latin1'), dev: String(lstatSync(tree, { bigint: true }).dev), spec: excludeSpec(tree, { patterns: ['*.log'] }) },
      read: { flags: SMALL_FILE_FLAGS },
      lz4: { module: lz4WasmModule() },
    }),
    task: () => ({ task: { lane: 'list', task: '' } }),
    view: (r) => r,
  },
  {
    // The threads of a whole-server run's passes (pass-workers.ts): the lister lane serves several walks, each task naming its own.
    body: passWorkersBody,
    init: () => ({ list: {}, read: { flags: SMALL_FILE_FLAGS }, lz4: { module: lz4WasmModule() } }),
    task: () => ({
      task: {
        lane: 'list',
        task: { walk: 1, init: { root: Buffer.from(tree).toString('latin1'), dev: String(lstatSync(tree, { bigint: true }).dev), spec: excludeSpec(tree, { patterns: ['*.log'] }) }, dir: '' },
      },
    }),
    view: (r) => r,
  },
];

beforeAll(() => {
  tree = mkdtempSync(join(tmpdir(), 'ferry-worker-bodies-'));
  writeFileSync(join(tree, 'a file'), 'hello\n');
  writeFileSync(join(tree, 'skipped.log'), 'x');
  writeFileSync(join(tree, 'caf\xe9'), 'latin1 name');
  mkdirSync(join(tree, 'sub'));
  symlinkSync('a file', join(tree, 'link'));
});

afterAll(() => rmSync(tree, { recursive: true, force: true }));

describe('worker bodies', () => {
  it('start every worker thread in src/ through platform/worker-pool.ts', () => {
    const users: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/new Worker\(/.test(readFileSync(p, 'utf8'))) users.push(p.slice(REPO.length + 1));
      }
    };
    walk(join(REPO, 'src'));
    expect(users).toEqual(['src/platform/worker-pool.ts']);
  });

  it('name nothing from outside their own text', () => {
    const names = outsideNames(Object.fromEntries(cases.map((c) => [c.body.name, workerSource(c.body)])));
    expect(names).toEqual(Object.fromEntries(cases.map((c) => [c.body.name, []])));
  });

  for (const c of cases) {
    it(`${c.body.name}: loads in a worker thread and gives what it gives on this thread`, async () => {
      const { task, transfer } = c.task();
      const inWorker = await runInWorker(c.body, c.init(), task, transfer);
      const here = await new WorkerPool(c.body, c.init(), { size: 0 }).run(c.task().task);
      expect(c.view(inWorker)).toEqual(c.view(here));
    });
  }
});
