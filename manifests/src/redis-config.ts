// The configuration files and start scripts of the Redis pods, as text: redis.conf for a
// standalone node or a node of a Sentinel group, sentinel.conf, and the POSIX sh scripts that add
// what is only known at start (passwords, who the primary is) on a memory-backed emptyDir. Kept
// apart from the constructs so tests can run exactly this text under the real redis-server and
// redis-sentinel. Internal to the library.

/** Port of the data nodes. */
export const REDIS_PORT = 6379;
/** Port of the sentinels. */
export const SENTINEL_PORT = 26379;

/** Where the pods mount the configuration ConfigMap, the runtime emptyDir and the TLS Secret. */
// The TLS Secret is not mounted under the ConfigMap's directory: a mount point inside a read-only
// ConfigMap volume cannot be created.
export const REDIS_PATHS = { config: '/etc/redis', run: '/run/redis', tls: '/etc/redis-tls', data: '/data' } as const;

/** TLS files of a cert-manager style `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, `ca.crt`). */
const TLS_LINES = [
  `tls-cert-file ${REDIS_PATHS.tls}/tls.crt`,
  `tls-key-file ${REDIS_PATHS.tls}/tls.key`,
  `tls-ca-cert-file ${REDIS_PATHS.tls}/ca.crt`,
  // Clients authenticate with the password, not with certificates; TLS gives them privacy and
  // the server's identity.
  'tls-auth-clients no',
  // Replication (and, in a sentinel, the links to data nodes and other sentinels) over TLS too.
  'tls-replication yes',
];

/**
 * Where a node or sentinel listens: TLS only on its usual port, or plain text; every interface
 * (the pod's), protected mode on (with a password set it still admits clients that authenticate).
 */
function listenLines(port: number, tls: boolean): string[] {
  return [...(tls ? ['port 0', `tls-port ${port}`, ...TLS_LINES] : [`port ${port}`]), 'bind 0.0.0.0 -::*', 'protected-mode yes'];
}

/** What shapes a data node's redis.conf. */
export interface RedisConfOptions {
  readonly maxMemoryMiB: number;
  readonly evictionPolicy: string;
  /** Serve TLS only, on the usual port. */
  readonly tls: boolean;
  /** A node of a Sentinel group: replication settings, and the runtime file is `runtime.conf`. */
  readonly replicated: boolean;
}

/** redis.conf (directives: https://raw.githubusercontent.com/redis/redis/7.2/redis.conf). */
export function redisConf(o: RedisConfOptions): string {
  return [
    ...listenLines(REDIS_PORT, o.tls),
    `dir ${REDIS_PATHS.data}`,
    `maxmemory ${o.maxMemoryMiB}mb`,
    `maxmemory-policy ${o.evictionPolicy}`,
    // AOF fsync once a second: at most one second of writes lost on a crash.
    'appendonly yes',
    'appendfsync everysec',
    'save 900 1',
    'save 300 10',
    'save 60 10000',
    'tcp-keepalive 60',
    'timeout 0',
    ...(o.replicated
      ? [
          // A replica answers reads while its link is down and refuses writes (the server writes
          // to the primary the sentinels name only).
          'replica-read-only yes',
          // The primary refuses writes when no replica has acknowledged within 10 s: a primary cut
          // off from the group stops taking writes a failover would discard.
          'min-replicas-to-write 1',
          'min-replicas-max-lag 10',
          // Disk-based full syncs: a diskless one holds the whole data set in the fork's buffers.
          'repl-diskless-sync no',
        ]
      : []),
    // Passwords (and, in a group, the role) live in a file written at start, never in this ConfigMap.
    `include ${REDIS_PATHS.run}/${o.replicated ? 'runtime.conf' : 'auth.conf'}`,
    '',
  ].join('\n');
}

/** What shapes sentinel.conf. */
export interface SentinelConfOptions {
  readonly masterName: string;
  readonly quorum: number;
  readonly downAfterMilliseconds: number;
  readonly failoverTimeoutMilliseconds: number;
  readonly tls: boolean;
}

/**
 * The sentinel's global settings (`sentinel.conf`). The start script writes the file the sentinel
 * runs on: these lines, then the monitor line with the current primary and the passwords, then
 * {@link sentinelMasterConf} (options of a master must follow its `sentinel monitor`).
 * @see https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/
 */
export function sentinelConf(o: SentinelConfOptions): string {
  return [
    ...listenLines(SENTINEL_PORT, o.tls),
    // The sentinel rewrites its configuration file; it lives on the runtime emptyDir.
    `dir ${REDIS_PATHS.run}`,
    // Pods change addresses on every restart: nodes and sentinels are named by their stable
    // StatefulSet DNS names (needs the headless Services to publish not-ready addresses).
    'sentinel resolve-hostnames yes',
    'sentinel announce-hostnames yes',
    '',
  ].join('\n');
}

/** Options of the monitored master; they must follow its `sentinel monitor` line. */
export function sentinelMasterConf(o: SentinelConfOptions): string {
  return [
    `sentinel down-after-milliseconds ${o.masterName} ${o.downAfterMilliseconds}`,
    `sentinel failover-timeout ${o.masterName} ${o.failoverTimeoutMilliseconds}`,
    // One replica resyncs with the new primary at a time; the other keeps serving reads.
    `sentinel parallel-syncs ${o.masterName} 1`,
    '',
  ].join('\n');
}

/** redis-cli against the local node (its default port) or sentinel on `port`, over TLS when `tls`. */
export function localCli(port: number, tls: boolean): string {
  return `redis-cli -h 127.0.0.1${port === REDIS_PORT ? '' : ` -p ${port}`}${tls ? ` --tls --cacert ${REDIS_PATHS.tls}/ca.crt` : ''}`;
}

/**
 * Shell lines defining `conf_string`: a value in redis.conf string syntax, with `\` and `"`
 * escaped, so any password survives (printf and sed see it on stdin, never on a command line).
 */
const QUOTE_FUNCTION = 'conf_string() { printf \'"%s"\' "$(printf \'%s\' "$1" | sed \'s/[\\\\"]/\\\\&/g\')"; }';

/**
 * Shell lines that set `primary` to the host the sentinels in `$REDIS_SENTINEL_HOSTS` name for
 * `$REDIS_MASTER_NAME`, or to `$REDIS_BOOTSTRAP_PRIMARY` when none answers (the group's first
 * start). Each sentinel gets 3 s; an answer must look like a host name.
 */
function findPrimaryLines(tls: boolean): string[] {
  const cli = `redis-cli -h "$s" -p ${SENTINEL_PORT}${tls ? ` --tls --cacert ${REDIS_PATHS.tls}/ca.crt` : ''}`;
  return [
    'primary=""',
    'for s in $REDIS_SENTINEL_HOSTS; do',
    `  answer=$(REDISCLI_AUTH="$REDIS_SENTINEL_PASSWORD" timeout 3 ${cli} --raw sentinel get-master-addr-by-name "$REDIS_MASTER_NAME" 2>/dev/null | head -n 1) || answer=""`,
    '  case "$answer" in',
    '    "" | *[!A-Za-z0-9.:-]*) ;;',
    '    *) primary="$answer"; break ;;',
    '  esac',
    'done',
    'if [ -z "$primary" ]; then primary="$REDIS_BOOTSTRAP_PRIMARY"; fi',
  ];
}

/** Start script of a standalone node: the password into a 0600 include, then redis-server. */
export function standaloneStartScript(): string {
  return [
    'set -eu',
    'umask 077',
    'escaped=$(printf \'%s\' "$REDIS_PASSWORD" | sed \'s/[\\\\"]/\\\\&/g\')',
    `printf 'requirepass "%s"\\n' "$escaped" > ${REDIS_PATHS.run}/auth.conf`,
    `exec redis-server ${REDIS_PATHS.config}/redis.conf`,
  ].join('\n');
}

/**
 * Start script of a data node of a Sentinel group: the password (clients and replication), the
 * host name it announces, and `replicaof` the primary the sentinels name — unless that is itself
 * (a node restarted before the sentinels noticed). On the group's first start no sentinel
 * answers and every node follows `$REDIS_BOOTSTRAP_PRIMARY` (pod 0).
 */
export function dataNodeStartScript(tls: boolean): string {
  return [
    'set -eu',
    'umask 077',
    QUOTE_FUNCTION,
    ...findPrimaryLines(tls),
    '{',
    '  printf \'requirepass %s\\n\' "$(conf_string "$REDIS_PASSWORD")"',
    '  printf \'masterauth %s\\n\' "$(conf_string "$REDIS_PASSWORD")"',
    '  printf \'replica-announce-ip %s\\n\' "$(conf_string "$REDIS_ANNOUNCE_HOST")"',
    `  if [ "$primary" != "$REDIS_ANNOUNCE_HOST" ]; then printf 'replicaof %s ${REDIS_PORT}\\n' "$(conf_string "$primary")"; fi`,
    `} > ${REDIS_PATHS.run}/runtime.conf`,
    `exec redis-server ${REDIS_PATHS.config}/redis.conf`,
  ].join('\n');
}

/**
 * Start script of a sentinel: global settings, then the master as the other sentinels know it
 * (pod 0 of the data nodes on the first start) with the data nodes' password, the sentinels' own
 * password and the host name it announces, then the master's options; exec redis-sentinel on it.
 */
export function sentinelStartScript(masterName: string, quorum: number, tls: boolean): string {
  const file = `${REDIS_PATHS.run}/sentinel.conf`;
  return [
    'set -eu',
    'umask 077',
    QUOTE_FUNCTION,
    ...findPrimaryLines(tls),
    '{',
    `  cat ${REDIS_PATHS.config}/sentinel.conf`,
    '  printf \'sentinel announce-ip %s\\n\' "$(conf_string "$SENTINEL_ANNOUNCE_HOST")"',
    '  printf \'requirepass %s\\n\' "$(conf_string "$REDIS_SENTINEL_PASSWORD")"',
    // The password a sentinel presents to the other sentinels (they all share it).
    '  printf \'sentinel sentinel-pass %s\\n\' "$(conf_string "$REDIS_SENTINEL_PASSWORD")"',
    `  printf 'sentinel monitor ${masterName} %s ${REDIS_PORT} ${quorum}\\n' "$primary"`,
    `  printf 'sentinel auth-pass ${masterName} %s\\n' "$(conf_string "$REDIS_PASSWORD")"`,
    `  cat ${REDIS_PATHS.config}/sentinel-master.conf`,
    `} > ${file}`,
    `exec redis-sentinel ${file}`,
  ].join('\n');
}
