// The end of a pass, for every engine: once everything sent is committed,
// the agent sends its digest over what it sent, the receiver answers with
// its own over what it wrote, and the pass succeeds only when they agree.
// A disagreement is SMS.0805 (the next pass sends again).
//
// Must not touch: how either digest is computed, what the frames carry.

import { FerryError } from '../../errors/ferry-error.js';

export async function agreeOnDigest<D extends { digest: string }>(o: {
  ours: string;
  /** Sends the end-of-pass frame carrying `ours`. */
  sendEnd: () => Promise<void>;
  /** The receiver's answer (throws if the session fails first). */
  awaitDone: () => Promise<D>;
  /** The message of the mismatch error, naming the volume. */
  mismatch: (theirs: string) => string;
}): Promise<D> {
  await o.sendEnd();
  const done = await o.awaitDone();
  if (done.digest !== o.ours) throw new FerryError('SMS.0805', o.mismatch(done.digest));
  return done;
}
