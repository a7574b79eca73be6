// The receiver's disks as the system session's WELCOME carries them
// (kindState.disks, JSON of SystemDisk[]), and what a malformed one becomes.

import { describe, expect, it } from 'vitest';
import { disksFromWelcome } from '../../../src/migration/system-client.js';
import type { Welcome } from '../../../src/protocol/frames.js';

const welcome = (kindState?: Record<string, string>): Welcome => ({
  version: 1,
  kind: 'system',
  target: 'm-lab',
  sessionId: 's1',
  pass: 'full',
  resumeFrom: 0,
  maxFrameBytes: 1 << 20,
  ...(kindState ? { kindState } : {}),
});

describe('disksFromWelcome', () => {
  it('reads the disks in the receiver’s order', () => {
    const disks = [
      { name: 'disk0', sizeBytes: 1 << 30, sectorBytes: 512 },
      { name: 'disk1', sizeBytes: 1 << 29, sectorBytes: 4096 },
    ];
    expect(disksFromWelcome(welcome({ disks: JSON.stringify(disks) }))).toEqual(disks);
  });

  it('a WELCOME without disks, or with a malformed list, is FERRY_FRAME_MALFORMED naming the field', () => {
    expect(() => disksFromWelcome(welcome())).toThrow(expect.objectContaining({ code: 'FERRY_FRAME_MALFORMED', message: expect.stringMatching(/kindState\.disks/) }));
    expect(() => disksFromWelcome(welcome({ disks: '{' }))).toThrow(expect.objectContaining({ code: 'FERRY_FRAME_MALFORMED' }));
    expect(() => disksFromWelcome(welcome({ disks: JSON.stringify([{ name: 'disk0', sizeBytes: -1, sectorBytes: 512 }]) }))).toThrow(
      expect.objectContaining({ code: 'FERRY_FRAME_MALFORMED', message: expect.stringMatching(/0\.sizeBytes/) }),
    );
  });
});
