// Every error code ferry raises, and what a caller may do after each one.
// The SMS codes (section 5.1 of the SMS v3 reference) are listed with the
// document's messages in sms-codes.ts; the FERRY_* codes, ferry's own
// where no SMS code fits, are listed here with a one-line meaning. The type
// `ErrorCode` is derived from both tables, so FerryError (ferry-error.ts) refuses
// a code that is not listed. Codes another program sends us (a receiver's
// ERROR or NACK frame, a control plane's error body) are not ours to list:
// they are carried through verbatim as a `ReceivedCode`.
//
// Must not touch: anything but codes and their recovery (no I/O, no messages
// beyond the meanings).

import { SMS_ERROR_CODES, type SmsCode } from './sms-codes.js';

/**
 * What a caller may do after an error:
 * - `retryable`: the same work may succeed if it is tried again (reconnect,
 *   back off): the network, a timeout, bytes damaged in transit.
 * - `fatal`: this attempt is over and trying it again as it is will not help
 *   until something outside changes (credentials, configuration, disk space,
 *   a person): stop and report; work kept for later may be tried later.
 * - `permanent`: the other side refused this request for good (it is invalid
 *   or what it names is gone): do not send it again.
 * A code gives the default (the tables below); an error may say otherwise
 * (FerryError's `recovery` option), e.g. the control-plane client classes its
 * errors by the HTTP status it got.
 */
export type Recovery = 'retryable' | 'fatal' | 'permanent';
export const RECOVERIES = ['retryable', 'fatal', 'permanent'] as const satisfies readonly Recovery[];

interface FerryCodeEntry {
  meaning: string;
  recovery: Recovery;
}

const fatal = (meaning: string): FerryCodeEntry => ({ meaning, recovery: 'fatal' });
const retryable = (meaning: string): FerryCodeEntry => ({ meaning, recovery: 'retryable' });

export const FERRY_ERROR_CODES = {
  FERRY_ABORTED: fatal('The work was stopped on purpose (STOP, shutdown, a closed client).'),
  FERRY_BAD_RESPONSE: fatal('The control plane answered with a body ferry cannot read.'),
  FERRY_BAD_TAR: fatal('The file stream is not a tar archive in ferry\'s dialect.'),
  FERRY_BAD_TARGET: fatal('A receiver target is not what its kind needs (a directory for file level).'),
  FERRY_BUSY: fatal('The agent is already running or preparing another pass.'),
  FERRY_CHUNK_CORRUPT: fatal('A compressed chunk does not decode.'),
  FERRY_CHUNK_HASH: retryable('Chunk bytes do not match the hash sent with them (damaged in transit): send them again.'),
  FERRY_COMMAND_FAILED: fatal('A control-plane command failed for a reason that has no code of its own.'),
  FERRY_CONFIG: fatal('The configuration (file, option or environment) is invalid.'),
  FERRY_CONFIGURE_FAILED: fatal('Configuring the migrated system for its new hardware failed part way (a tool in the target chroot failed, or the result still names a receiver-side device); the copied data is intact and configure may run again.'),
  FERRY_CONFIGURE_UNSUPPORTED: fatal('The migrated system is not one the receiver can configure (the message says which distribution, boot loader or initramfs tool it found); nothing was changed.'),
  FERRY_CREDENTIALS: fatal('The local control plane\'s credentials file cannot be read or is invalid.'),
  FERRY_DEMO: fatal('The demo failed for a reason that has no code of its own.'),
  FERRY_DEMO_CHILD: fatal('A ferry process the demo started exited unexpectedly.'),
  FERRY_DEMO_INTERRUPTED: fatal('The demo was interrupted.'),
  FERRY_DEMO_START: fatal('A ferry process the demo started did not become ready.'),
  FERRY_DEMO_TASK: fatal('The demo\'s migration task did not succeed.'),
  FERRY_DEMO_TIMEOUT: fatal('The demo waited too long for a step.'),
  FERRY_DEMO_VERIFY: fatal('The demo\'s copy differs from its source.'),
  FERRY_DISCOVERY_INVALID: fatal('Discovery produced a body the SMS schema rejects (a bug).'),
  FERRY_DISK_IN_USE: fatal('A target disk holds a mounted file system, an active swap, an LVM physical volume in use or the receiver\'s own root: the receiver will not touch it.'),
  FERRY_FRAME_MALFORMED: fatal('A wire frame does not follow the protocol.'),
  FERRY_FRAME_TOO_LARGE: fatal('A wire frame exceeds the size cap.'),
  FERRY_FRAME_UNEXPECTED: fatal('A wire frame came out of order.'),
  FERRY_FRAME_UNKNOWN: fatal('A wire frame has a type this session does not know.'),
  FERRY_FS_UNSUPPORTED: fatal('A layout asks for a file system type the receiver cannot create (the type is named in the message).'),
  FERRY_HANDSHAKE_TIMEOUT: fatal('No HELLO reached the receiver in time.'),
  FERRY_IDLE_TIMEOUT: retryable('The receiver stopped answering during a pass: reconnect and resume.'),
  FERRY_INTERNAL: fatal('An internal invariant failed (a bug).'),
  FERRY_KIND_UNSUPPORTED: fatal('The receiver does not serve this kind of session.'),
  FERRY_LAYOUT_CHANGED: fatal('The layout differs from the one the receiver already laid out for this migration: refused (only an explicit re-layout wipes the disks).'),
  FERRY_LAYOUT_FAILED: fatal('Laying out the target disks failed part way (a partitioning, mkfs or mount tool failed).'),
  FERRY_LAYOUT_INVALID: fatal('A whole-server layout is malformed or inconsistent (the message names the disk or partition).'),
  FERRY_LAYOUT_NO_FIT: fatal('A shrunk partition cannot hold the used space of its source file system with the margin (the message gives the figures).'),
  FERRY_LOCKED: fatal('Another process holds the data directory\'s lock.'),
  FERRY_LZ4_WASM: fatal('The LZ4 WebAssembly module cannot load (a warning: the TypeScript codec is used).'),
  FERRY_MANIFEST: fatal('A receiver\'s block manifest cannot be written.'),
  FERRY_MANIFEST_TORN: fatal('A file manifest ends in a partial line (an interrupted write).'),
  FERRY_NO_AUTH: fatal('A control-plane call needs credentials and none are configured.'),
  FERRY_NO_CONTROL_PLANE: fatal('No local control plane runs in the given data directory.'),
  FERRY_OVER_SPEED: fatal('Over-speed protection stopped the task.'),
  FERRY_PASS_FAILED: fatal('A pass failed for a reason that has no code of its own.'),
  FERRY_PATCH_BASE: fatal('The receiver has no regular file to apply a file patch to.'),
  FERRY_PROTOCOL_VERSION: fatal('The receiver does not speak the agent\'s protocol version.'),
  FERRY_SERVICE: fatal('The service manager (systemd, WinSW) failed.'),
  FERRY_SESSION_CLOSED: fatal('A receiver session closed while it still had work under way (a long zero run stops between slices).'),
  FERRY_SOURCE_CHANGED: retryable('The source changed under a frame the receiver refused: resume from the last commit.'),
  FERRY_SPAWN: fatal('A ferry child process could not be started.'),
  FERRY_STATE: fatal('The agent\'s state file cannot be read or is invalid.'),
  FERRY_STATE_CORRUPT: fatal('A receiver target\'s state file cannot be read.'),
  FERRY_STORE_CLOSED: fatal('The local control plane\'s store is closed.'),
  FERRY_STORE_CORRUPT: fatal('The local control plane\'s store cannot be read.'),
  FERRY_STORE_FAILED: fatal('The local control plane\'s store failed a write and refuses more.'),
  FERRY_TOOL_FAILED: fatal('An external program failed.'),
  FERRY_TOOL_MISSING: fatal('An external program is not installed.'),
  FERRY_TOOL_TIMEOUT: fatal('An external program did not finish in time.'),
  FERRY_UNSAFE_ENTRY: fatal('A tar entry would write outside the target (or through a link): refused.'),
  FERRY_UNSUPPORTED_PLATFORM: fatal('This operating system is not supported.'),
  FERRY_USAGE: fatal('The command line is wrong.'),
  FERRY_WRITE_OUT_OF_RANGE: fatal('A write would end past the target volume.'),
} as const satisfies Record<`FERRY_${string}`, FerryCodeEntry>;

export type FerryCode = keyof typeof FERRY_ERROR_CODES;

/**
 * The control plane answered an HTTP status whose body names no SMS code
 * (the client's fallback; its recovery comes from the status).
 */
export type HttpStatusCode = `FERRY_HTTP_${number}`;

/** Every code ferry itself raises. */
export type ErrorCode = SmsCode | FerryCode | HttpStatusCode;

declare const received: unique symbol;
/**
 * A code another program sent (a receiver's ERROR or NACK frame, a control
 * plane's error body), carried through verbatim: it may be one ferry does
 * not know. Make one with receivedCode().
 */
export type ReceivedCode = string & { readonly [received]: true };

export function receivedCode(code: string): ReceivedCode {
  return code as ReceivedCode;
}

/**
 * The SMS codes another attempt can cure; every other SMS code is fatal
 * unless the error says otherwise (the client knows from the failure which
 * DNS or send errors are transient).
 */
const RETRYABLE_SMS_CODES: ReadonlySet<SmsCode> = new Set<SmsCode>([
  'SMS.0201', // network busy
  'SMS.0203', // connection to the control plane timed out
  'SMS.0301', // the network request could not be sent
  'SMS.0807', // network error between source and target
]);

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(FERRY_ERROR_CODES, code) || Object.hasOwn(SMS_ERROR_CODES, code) || /^FERRY_HTTP_\d+$/.test(code);
}

/** The default recovery of a code: the tables above; a code ferry does not know is fatal. */
export function recoveryOfCode(code: string): Recovery {
  if (Object.hasOwn(FERRY_ERROR_CODES, code)) return FERRY_ERROR_CODES[code as FerryCode].recovery;
  return RETRYABLE_SMS_CODES.has(code as SmsCode) ? 'retryable' : 'fatal';
}

/**
 * What an HTTP error status says about a request, written once for the
 * control-plane client, the agent and the local control plane: 429 and 5xx
 * may pass later; any other 4xx but 401 is a refusal for good; a 401 (new
 * credentials may help, a person may have to act) and anything else is fatal.
 */
export function recoveryOfStatus(status: number): Recovery {
  if (status === 429 || status >= 500) return 'retryable';
  if (status >= 400 && status < 500 && status !== 401) return 'permanent';
  return 'fatal';
}
