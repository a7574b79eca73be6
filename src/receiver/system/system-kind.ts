// The receiver's 'system' session kind (layout/system-session.ts has the
// shapes): HELLO names a migration id, WELCOME tells the agent the disks this
// receiver was given (kindState.disks, JSON SystemDisk[]); then one
// SYSTEM_REQUEST at a time, each answered by a SYSTEM_REPLY: 'layout' lays out
// the disks (lay-out.ts) and registers one receiver target per volume
// ('ID.VOLID', for the ordinary block and file sessions that copy them, for
// as long as this session lives); 'volume-done' grows what a block copy
// brought (grow.ts); 'configure' configures the copied system for its new
// hardware (receiver/configure/). END (or the connection going, or the receiver closing)
// removes the targets, unmounts everything and detaches the loop devices the
// session attached; END is answered with DONE. Any error ends the session
// with an ERROR frame and leaves nothing mounted; the receiver serves on.

import { FerryError, errorMessage } from '../../errors/ferry-error.js';
import { FrameType, encodeJsonFrame, frameTypeName, type Done, type RawFrame } from '../../protocol/frames.js';
import { FILE_SYSTEMS, type Layout } from '../../layout/model.js';
import { configureLaidOut } from '../configure/configure-op.js';
import { SystemRequestSchema, type SystemDisk, type SystemReply } from '../../layout/system-session.js';
import type { KindSession, SessionContext, SessionKindHandler } from '../session-kind.js';
import { describeDisk, type DiskSpec } from './disks.js';
import { growVolume } from './grow.js';
import { layOut, type LaidOutSystem } from './lay-out.js';
import { SystemPaths } from './system-paths.js';

/** The 'system' kind for a receiver given `disks` (`--disk NAME=DEVICE`). */
export function systemKind(disks: DiskSpec[]): SessionKindHandler {
  // Disk name → the migration whose live session laid it out: at block level
  // nothing is mounted, so the disk guard alone would not keep a second
  // migration off a disk another one is copying into.
  const claims = new Map<string, string>();
  return {
    ownTarget: (name, dataDir) => ({ name, path: new SystemPaths(dataDir, name).dir }),
    async open(ctx) {
      const described = await Promise.all(disks.map(describeDisk));
      return new SystemSession(ctx, disks, described, claims);
    },
  };
}

/** A request body as JSON, with an unknown file system type refused by name (the schema would only say 'invalid option'). */
function parseRequest(body: Buffer) {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw new FerryError('FERRY_FRAME_MALFORMED', 'SYSTEM_REQUEST body is not JSON');
  }
  const known: readonly string[] = FILE_SYSTEMS;
  const layout = (raw as { layout?: { disks?: unknown; volumeGroups?: unknown } } | null)?.layout;
  const contents = [
    ...(Array.isArray(layout?.disks) ? layout.disks : []).flatMap((d: { partitions?: unknown }) => (Array.isArray(d?.partitions) ? d.partitions : [])),
    ...(Array.isArray(layout?.volumeGroups) ? layout.volumeGroups : []).flatMap((v: { logicalVolumes?: unknown }) => (Array.isArray(v?.logicalVolumes) ? v.logicalVolumes : [])),
  ] as Array<{ id?: unknown; content?: { kind?: unknown; fsType?: unknown } }>;
  for (const v of contents) {
    const t = v?.content?.fsType;
    if (v?.content?.kind === 'filesystem' && typeof t === 'string' && !known.includes(t)) {
      throw new FerryError('FERRY_FS_UNSUPPORTED', `file system type '${t.slice(0, 40)}' of volume ${String(v.id).slice(0, 64)} cannot be created by this receiver (it makes ${FILE_SYSTEMS.join(', ')})`);
    }
  }
  const r = SystemRequestSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const what = `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`;
    throw new FerryError((raw as { op?: unknown }).op === 'layout' ? 'FERRY_LAYOUT_INVALID' : 'FERRY_FRAME_MALFORMED', `SYSTEM_REQUEST ${what}`);
  }
  return r.data;
}

class SystemSession implements KindSession {
  readonly welcome: KindSession['welcome'];
  private readonly paths: SystemPaths;
  private system: LaidOutSystem | undefined;
  /** The layout the agent asked for (configure reads the source's device names in it). */
  private requested: Layout | undefined;
  private busy = false;
  /** The disks this session holds against other migrations (claims). */
  private claimed: string[] = [];
  private released: Promise<void> | undefined;

  constructor(
    private readonly ctx: SessionContext,
    private readonly disks: DiskSpec[],
    private readonly described: SystemDisk[],
    private readonly claims: Map<string, string>,
  ) {
    this.paths = new SystemPaths(ctx.dataDir, ctx.target.name);
    this.welcome = { pass: 'full', resumeFrom: 0, kindState: { disks: JSON.stringify(described) } };
  }

  onFrame(frame: RawFrame): void {
    if (this.busy) {
      this.ctx.fail(new FerryError('FERRY_FRAME_UNEXPECTED', `${frameTypeName(frame.type)} before the previous SYSTEM_REQUEST was answered (one at a time)`));
      return;
    }
    this.busy = true;
    this.handle(frame).then(
      () => (this.busy = false),
      (e: unknown) => this.ctx.fail(e),
    );
  }

  private async handle(frame: RawFrame): Promise<void> {
    if (frame.type === FrameType.END) {
      await this.release();
      const done: Done = { digest: '', verified: true, mismatchedChunks: 0 };
      await this.ctx.channel.send(encodeJsonFrame(FrameType.DONE, done));
      return;
    }
    if (frame.type !== FrameType.SYSTEM_REQUEST) throw new FerryError('FERRY_FRAME_UNKNOWN', `unexpected frame type ${frameTypeName(frame.type)} in a system session`);
    const req = parseRequest(frame.body);
    let reply: SystemReply;
    if (req.op === 'layout') {
      // A second layout in one session starts from nothing mounted.
      await this.release();
      this.released = undefined;
      const id = this.paths.id;
      for (const d of req.layout.disks) {
        const holder = this.claims.get(d.name);
        if (holder !== undefined && holder !== id) throw new FerryError('FERRY_DISK_IN_USE', `disk ${d.name} is laid out for migration ${holder}, whose system session is open; the receiver will not write to it`);
      }
      for (const d of req.layout.disks) if (!this.claims.has(d.name)) this.claims.set(d.name, id);
      this.claimed = req.layout.disks.map((d) => d.name).filter((n) => this.claims.get(n) === id);
      this.system = await layOut(req, this.disks, this.described, this.paths, this.ctx.log);
      this.requested = req.layout;
      for (const v of this.system.volumes) this.ctx.targets.register({ name: v.volume.target, path: v.path, kind: v.volume.kind });
      const { state, made, notes, volumes } = this.system;
      reply = { op: 'layout', state, layout: made, volumes: volumes.map((v) => v.volume), notes, stagingRoot: this.paths.root };
    } else if (req.op === 'configure') {
      const system = this.system;
      if (!system || !this.requested) throw new FerryError('FERRY_FRAME_UNEXPECTED', 'configure before anything was laid out in this session');
      // No other session may write a volume while the system is configured.
      await Promise.all(system.volumes.map((v) => this.ctx.targets.unregister(v.volume.target)));
      try {
        const r = await configureLaidOut(system, this.requested, this.paths, req.keepStaticNetwork, this.ctx.log);
        reply = { op: 'configure', ...r };
      } finally {
        for (const v of system.volumes) this.ctx.targets.register({ name: v.volume.target, path: v.path, kind: v.volume.kind });
      }
    } else {
      const v = this.system?.volumes.find((x) => x.volume.id === req.id);
      if (!v) throw new FerryError('FERRY_FRAME_MALFORMED', `volume-done for ${req.id.slice(0, 64)}: no such volume in this session's layout${this.system ? '' : ' (nothing was laid out yet)'}`);
      // No other session may write the volume while it grows.
      await this.ctx.targets.unregister(v.volume.target);
      try {
        reply = { op: 'volume-done', id: req.id, actions: await growVolume(v, this.paths.growMount(req.id)) };
      } finally {
        this.ctx.targets.register({ name: v.volume.target, path: v.path, kind: v.volume.kind });
      }
    }
    await this.ctx.channel.send(encodeJsonFrame(FrameType.SYSTEM_REPLY, reply));
  }

  /** Removes the volumes' targets (ending sessions still on them), then unmounts and detaches; once. */
  private release(): Promise<void> {
    this.released ??= (async () => {
      const system = this.system;
      this.system = undefined;
      for (const n of this.claimed.splice(0)) this.claims.delete(n);
      if (!system) return;
      await Promise.all(system.volumes.map((v) => this.ctx.targets.unregister(v.volume.target)));
      await system.release();
    })();
    return this.released;
  }

  async close(reason: Error): Promise<void> {
    this.ctx.log.debug({ reason: reason.message }, 'system session closing');
    await this.release().catch((e: unknown) => this.ctx.log.error({ err: errorMessage(e) }, 'releasing the laid-out system failed'));
  }
}
