// The systemd unit files, rendered from one template so that the files
// shipped in systemd/ and the ones `ferry service install` writes never
// drift apart (a unit test compares them). Hardening choices are explained
// in the unit text itself, where an administrator reading it will look.

export type ServiceName = 'agent' | 'receiver';

export interface UnitOptions {
  /** argv[0..] that runs ferry: ['/usr/bin/ferry'] or [node, /opt/ferry/dist/cli/bin.js]. */
  exec: string[];
  configPath?: string;
  dataDir?: string;
}

export const DEFAULT_EXEC = ['/usr/bin/ferry'];

function quoteArg(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `"${a.replace(/(["\\])/g, '\\$1')}"`;
}

export function unitFileName(name: ServiceName): string {
  return `ferry-${name}.service`;
}

export function renderUnit(name: ServiceName, options: UnitOptions = { exec: DEFAULT_EXEC }): string {
  return name === 'agent' ? renderAgentUnit(options) : renderReceiverUnit(options);
}

export function renderAgentUnit(options: UnitOptions = { exec: DEFAULT_EXEC }): string {
  const config = options.configPath ?? '/etc/ferry/agent.yaml';
  const execStart = [...options.exec, 'agent', '--config', config].map(quoteArg).join(' ');
  return `# ferry agent: registers this machine with the migration control plane and
# replicates its disks or file trees to a receiver. Installed by
# \`ferry service install\` (or a package) as /etc/systemd/system/ferry-agent.service.
[Unit]
Description=ferry source-server migration agent
Documentation=file:///usr/share/doc/ferry/agent.md
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=exec
ExecStart=${execStart}
# glibc keeps a malloc arena per thread that allocates (the main thread, the
# worker thread of a pass, V8's and libuv's helpers) and returns little of
# it: with two arenas the agent's peak RSS on a full file pass of a /usr tree
# was 195/181/180 MB against 207/208/215 MB (same build, alternating runs,
# docs/file-replication.md, issue 14). Only the environment can set it.
Environment=MALLOC_ARENA_MAX=2
Restart=on-failure
RestartSec=5s
# SIGTERM goes to the agent only; it commits in-flight data, saves its state
# and exits within 10 s. Helpers it started get SIGTERM once it has gone,
# and everything left gets SIGKILL after TimeoutStopSec.
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=30s
# /var/lib/ferry (state, manifests), /var/log/ferry (optional log file).
StateDirectory=ferry
StateDirectoryMode=0700
LogsDirectory=ferry
LogsDirectoryMode=0750
ConfigurationDirectory=ferry
ConfigurationDirectoryMode=0700
UMask=0077
# Low priority: the production workload comes first (the config can lower it further).
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7

# --- Hardening the agent can live with ---------------------------------------
# It runs as root: it opens raw block devices and reads every file.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/var/lib/ferry /var/log/ferry
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@mount @swap @reboot @module @obsolete @cpu-emulation @debug
SystemCallErrorNumber=EPERM
# Raw disks and every file: CAP_SYS_ADMIN (block-device ioctls, fsfreeze for
# consistent snapshots), CAP_DAC_READ_SEARCH/CAP_DAC_OVERRIDE (read any
# file), CAP_SYS_NICE (nice/ionice), CAP_FOWNER/CAP_CHOWN (own state files).
CapabilityBoundingSet=CAP_SYS_ADMIN CAP_DAC_READ_SEARCH CAP_DAC_OVERRIDE CAP_SYS_NICE CAP_FOWNER CAP_CHOWN
DevicePolicy=closed
DeviceAllow=block-* r
#
# Left out on purpose:
# - PrivateDevices=yes hides /dev/sd*, /dev/nvme*, /dev/vd*, /dev/mapper/*:
#   block-level replication reads exactly those devices.
# - MemoryDenyWriteExecute=yes breaks V8's JIT (Node needs writable and
#   executable pages) and the WebAssembly hasher (xxhash-wasm).
# - ProcSubset=pid hides /proc/partitions, /proc/mounts' siblings,
#   /proc/swaps, /proc/mdstat, /proc/cpuinfo and /proc/meminfo, which
#   discovery reads to describe the machine.
# - PrivateNetwork=/IPAddressDeny=: the agent must reach the control plane and
#   the receiver, whose addresses come from the task at run time.
# - DynamicUser=/User=: a non-root user cannot read raw disks.

[Install]
WantedBy=multi-user.target
`;
}

export function renderReceiverUnit(options: UnitOptions = { exec: DEFAULT_EXEC }): string {
  const dataDir = options.dataDir ?? '/var/lib/ferry-receiver';
  const execStart = [...options.exec, 'receive', '--data', dataDir].map(quoteArg).join(' ');
  return `# ferry receiver: runs on the intermediate instance in the target cloud and
# writes what agents send to its target disks or file trees. Its settings go
# in /etc/ferry/receiver.env (see receiver.sample.env): FERRY_RECEIVER_LISTEN
# (HOST:PORT, default 0.0.0.0:7443) and FERRY_RECEIVER_ARGS (the targets and
# other flags of \`ferry receive\`, e.g. "--target disk0=/dev/vdb").
[Unit]
Description=ferry migration receiver (intermediate instance)
Documentation=file:///usr/share/doc/ferry/agent.md
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=exec
Environment=FERRY_RECEIVER_LISTEN=0.0.0.0:7443
EnvironmentFile=-/etc/ferry/receiver.env
ExecStart=${execStart} --listen \${FERRY_RECEIVER_LISTEN} $FERRY_RECEIVER_ARGS
Restart=on-failure
RestartSec=5s
# The receiver fsyncs its manifest at commit points; SIGTERM lets it finish
# the current commit before it exits.
KillMode=mixed
TimeoutStopSec=30s
StateDirectory=ferry-receiver
StateDirectoryMode=0700
LogsDirectory=ferry-receiver
UMask=0077
LimitNOFILE=65536

NoNewPrivileges=yes
# It writes target block devices and mounts target file systems to extract
# file trees into them, so / stays writable except /usr, /boot and /etc.
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service @mount
SystemCallErrorNumber=EPERM
# Left out: PrivateDevices= (it writes the target disks),
# MemoryDenyWriteExecute= (V8's JIT and WebAssembly need W+X pages),
# ProcSubset=pid (it reads /proc/partitions and /proc/mounts to find targets).

[Install]
WantedBy=multi-user.target
`;
}
