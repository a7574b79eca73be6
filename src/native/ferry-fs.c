// ferry's native file-system helper (Node-API, C99, Linux). Built by
// packaging/build-native.mjs into dist/native/ferry-fs.node (the single
// executable carries it as an asset); src/platform/native-fs.ts loads it,
// and without it (no C compiler at build time, FERRY_NATIVE=0) the same work
// goes through node:fs and @napi-rs/xattr, with the same results. Its calls:
// - listdir: one directory's entries with every entry's lstat, symlink
//   targets and manifest lines, instead of a readdir and then one lstat (and
//   readlink) per entry by its full path;
// - readFiles: a batch of small files read whole on libuv's thread pool;
// - writeFiles: the receiver's batch of small new files written (on its writer thread);
// - xattrs: an entry's extended attributes by path or fd;
// - openDirBeneath: a directory below the walk's root opened with no symlink
//   in its path (for its xattrs, and for a listing read through it), and
//   closeFd to close it;
// - lz4Compress, lz4Decompress: LZ4 blocks through the host's liblz4, where
//   it has one (loaded at run time);
// - readHashed: one large read of a volume, and every chunk's canonical hash
//   (xxh64 from xxhash.h, inlined), on libuv's thread pool;
// - xxh64, xxh64Update, xxh64Digest: xxh64 of bytes where they are, and a
//   running one (the file stream's digest).
//
// Why listdir (issue 14, measured on the 2-core VM, 43,065 entries of /usr,
// one thread): node:fs's readdirSync + the raw lstat binding took 305-313 ms
// warm and 571-763 ms cold; getdents64 + fstatat relative to the directory's
// fd took 184 ms warm and 420-436 ms cold. Each lstat by full path walks
// every component of the path again in the kernel, and every call crosses
// from JS into C++; here each name is looked up in its directory once, and
// the directory costs one crossing. The others say why at their definitions.
//
// Only syscall(2), pread, the C library's xattr calls (glibc 2.3), its
// memory, string and sort functions (no symbol newer than glibc 2.14's
// memcpy), libuv's error names and texts, dlopen and once (exported by node,
// so that errors read as node:fs's and no newer glibc symbol is needed) and
// Node-API are used, and nothing is shared between calls but liblz4's
// functions, found once: worker threads may list, and pool threads read, at
// the same time.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uv.h>
// xxHash's reference code, header only and inlined (XXH_INLINE_ALL): no library to link or load.
// packaging/build-native.mjs defines FERRY_XXHASH where the compiler finds xxhash.h 0.7.3 or later (Debian:
// libxxhash-dev; older ones inline only with xxhash.c beside them); without it the module has no readHashed
// and block passes hash in WebAssembly.
#ifdef FERRY_XXHASH
#define XXH_INLINE_ALL
#include <xxhash.h>
#endif

// Node's lstat binding fills 18 doubles: dev, mode, nlink, uid, gid, rdev,
// blksize, ino, size, blocks, then seconds and nanoseconds of atime, mtime,
// ctime (and birthtime, not given here). These are the first 16, in that
// order, except that a failed fstatat of an entry leaves -errno in blksize.
#define FIELDS 16

// A directory with more entries than this is not listed here (the caller
// falls back to node:fs): what a listing holds here and in the result grows
// with it, outside V8's heap limits (about 280 bytes an entry, and its
// manifest line, whose total LINES_BYTES bounds).
#define MAX_ENTRIES 100000

// The longest path the kernel takes (PATH_MAX with its NUL): an entry whose
// full path is longer fails as its lstat by path would (ENAMETOOLONG), not
// listed as if it were reachable.
#define PATH_BYTES 4096

// A path as messages show it: whole up to this, cut beyond (node:fs shows it whole).
#define SHOWN_BYTES (2 * PATH_BYTES)

struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// One name while the directory is read: 24 bytes (its lstat goes straight
// into the result's buffer, which V8 owns and frees: what is malloc'ed here
// and may stay in the thread's arena after the call is small).
struct entry {
  size_t name;  // offset into the names buffer (which may move while it grows)
  const char *at;  // the name itself, set once every name is in
  size_t len;
};

static int by_name(const void *a, const void *b) {
  // strcmp compares bytes as unsigned char: the order of latin1 text in JS.
  return strcmp(((const struct entry *)a)->at, ((const struct entry *)b)->at);
}

// Throws an Error like node:fs's (`CODE: text, scandir 'path'`, with .code and .errno), or, with e == 0,
// one without .errno (not a file-system error: the caller lists with node:fs instead). Never leaves
// the call without an exception pending.
static void throw_error_in(napi_env env, int e, const char *code, const char *syscall_name, const char *path) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  // libuv's name and text for the error, as node:fs reports it (node exports libuv's functions).
  char msg[SHOWN_BYTES + 200];
  if (e != 0) snprintf(msg, sizeof msg, "%s: %s, %s '%s'", uv_err_name(-e), uv_strerror(-e), syscall_name, path);
  else snprintf(msg, sizeof msg, "%s: %s", code, path);
  napi_value m, c, err, no;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok ||
      napi_create_string_utf8(env, e != 0 ? uv_err_name(-e) : code, NAPI_AUTO_LENGTH, &c) != napi_ok ||
      napi_create_error(env, c, m, &err) != napi_ok) {
    napi_throw_error(env, NULL, "ferry-fs: call failed");
    return;
  }
  if (e != 0 && napi_create_int32(env, -e, &no) == napi_ok) napi_set_named_property(env, err, "errno", no);
  napi_throw(env, err);
}

static void throw_error(napi_env env, int e, const char *code, const char *path) {
  throw_error_in(env, e, code, "scandir", path);
}

static void fill(double *a, const struct stat *s) {
  a[0] = (double)s->st_dev;
  a[1] = (double)s->st_mode;
  a[2] = (double)s->st_nlink;
  a[3] = (double)s->st_uid;
  a[4] = (double)s->st_gid;
  a[5] = (double)s->st_rdev;
  a[6] = (double)s->st_blksize;
  a[7] = (double)s->st_ino;
  a[8] = (double)s->st_size;
  a[9] = (double)s->st_blocks;
  a[10] = (double)s->st_atim.tv_sec;
  a[11] = (double)s->st_atim.tv_nsec;
  a[12] = (double)s->st_mtim.tv_sec;
  a[13] = (double)s->st_mtim.tv_nsec;
  a[14] = (double)s->st_ctim.tv_sec;
  a[15] = (double)s->st_ctim.tv_nsec;
}

// Text that grows as it is written (a listing's symlink targets and manifest
// lines); `ok` goes 0 for good when memory runs out, and what was asked of it
// is then left out of the result (the caller does that work itself).
struct text {
  char *p;
  size_t used, cap;
  int ok;
};

static int text_room(struct text *t, size_t more) {
  if (!t->ok) return 0;
  if (t->used + more <= t->cap) return 1;
  size_t want = t->cap == 0 ? 16384 : t->cap;
  while (t->used + more > want) want *= 2;
  char *p = realloc(t->p, want);
  if (p == NULL) {
    t->ok = 0;
    return 0;
  }
  t->p = p;
  t->cap = want;
  return 1;
}

static void text_put(struct text *t, const char *s, size_t n) {
  if (text_room(t, n)) {
    memcpy(t->p + t->used, s, n);
    t->used += n;
  }
}

static void text_char(struct text *t, char c) {
  if (text_room(t, 1)) t->p[t->used++] = c;
}

// Decimal, as JavaScript prints the number (or the bigint: exact at any size).
static void text_u64(struct text *t, uint64_t v) {
  char b[24];
  int i = sizeof b;
  do {
    b[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  text_put(t, b + i, sizeof b - i);
}

// Seconds and nanoseconds as one count of nanoseconds in decimal (a bigint's sec * 1e9 + nsec, also before 1970).
static void text_ns(struct text *t, int64_t sec, long nsec) {
  __int128 v = (__int128)sec * 1000000000 + nsec;
  if (v < 0) {
    text_char(t, '-');
    v = -v;
  }
  char b[48];
  int i = sizeof b;
  do {
    b[--i] = (char)('0' + (int)(v % 10));
    v /= 10;
  } while (v != 0);
  text_put(t, b + i, sizeof b - i);
}

// The manifest's escape (protocol/paths.ts escapeField): bytes up to space, from DEL up, and '%' as %xx.
static void text_escaped(struct text *t, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t from = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char b = (unsigned char)s[i];
    if (b <= 0x20 || b >= 0x7f || b == 0x25) {
      text_put(t, s + from, i - from);
      char e[3] = {'%', hex[b >> 4], hex[b & 15]};
      text_put(t, e, 3);
      from = i + 1;
    }
  }
  text_put(t, s + from, n - from);
}

// What a listing's lines may take (beyond it the caller makes them: a prefix of a deep path repeated on
// every line of a huge directory would otherwise grow without bound outside V8's limits).
#define LINES_BYTES (64u << 20)

// One entry's manifest line (replication/file/manifest.ts manifestLine: 14 tab-separated fields), or
// nothing for a type the walk does not copy (a socket) or a symlink whose target could not be read.
static void manifest_line(struct text *t, const char *prefix, size_t plen, const char *name, size_t nlen, const struct stat *st,
                          const char *target, long tl) {
  char type;
  if (S_ISREG(st->st_mode)) type = 'f';
  else if (S_ISDIR(st->st_mode)) type = 'd';
  else if (S_ISLNK(st->st_mode)) type = 'l';
  else if (S_ISFIFO(st->st_mode)) type = 'p';
  else if (S_ISCHR(st->st_mode)) type = 'c';
  else if (S_ISBLK(st->st_mode)) type = 'b';
  else return;
  if (type == 'l' && tl <= 0) return;
  text_put(t, prefix, plen);
  text_escaped(t, name, nlen);
  char f[4] = {'\t', type, '\t', 0};
  text_put(t, f, 3);
  text_u64(t, type == 'f' ? (uint64_t)st->st_size : 0);
  text_char(t, '\t');
  text_ns(t, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
  text_char(t, '\t');
  text_ns(t, st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
  text_char(t, '\t');
  char o[8];
  int i = sizeof o;
  unsigned mode = st->st_mode & 07777;
  do {
    o[--i] = (char)('0' + (mode & 7));
    mode >>= 3;
  } while (mode != 0);
  text_put(t, o + i, sizeof o - i);
  const uint64_t nums[] = {st->st_uid, st->st_gid, st->st_dev, st->st_ino, st->st_nlink, st->st_rdev, (uint64_t)st->st_blocks * 512};
  for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
    text_char(t, '\t');
    text_u64(t, nums[k]);
  }
  text_char(t, '\t');
  if (type == 'l') text_escaped(t, target, (size_t)tl);
  else text_char(t, '-');
}

// Opens the directory `path` (plen bytes); its first rootLen bytes name the walk's root, opened as named (it
// may be a symlink the operator gave), and below it no component may be a symlink: one put in place of a
// directory anywhere under the root since the walk listed it is refused (ELOOP), instead of leading the
// listing out of the tree. openat2's RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH relative to the root; before
// Linux 5.6 (ENOSYS), or where a filter refuses the call (EPERM), one component at a time with O_NOFOLLOW.
// -1 and errno on failure.
// openat2's number and arguments (Linux 5.6, <linux/openat2.h>), here so that the module builds with older
// kernel headers too.
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
struct ferry_open_how {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
#define FERRY_RESOLVE_NO_SYMLINKS 0x04
#define FERRY_RESOLVE_BENEATH 0x08
static int open_dir_beneath(const char *path, size_t plen, size_t rootLen) {
  char root[PATH_BYTES];
  memcpy(root, path, rootLen);
  root[rootLen] = 0;
  int rfd = (int)syscall(SYS_openat, AT_FDCWD, root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) return -1;
  char rest[PATH_BYTES];
  size_t at = rootLen;
  while (at < plen && path[at] == '/') at++;
  memcpy(rest, path + at, plen - at);
  rest[plen - at] = 0;
  struct ferry_open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = FERRY_RESOLVE_NO_SYMLINKS | FERRY_RESOLVE_BENEATH;
  int fd = (int)syscall(SYS_openat2, rfd, rest, &how, sizeof how);
  if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
    int cur = rfd;
    fd = -1;
    for (char *comp = rest, *next; comp != NULL; comp = next) {
      next = strchr(comp, '/');
      if (next != NULL) *next++ = 0;
      if (*comp == 0) continue;
      int nfd = (int)syscall(SYS_openat, cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int e = errno;
      if (cur != rfd) close(cur);
      if (nfd < 0) {
        close(rfd);
        errno = e;
        return -1;
      }
      cur = nfd;
    }
    fd = cur == rfd ? (int)syscall(SYS_openat, rfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : cur;
  }
  int e = errno;
  close(rfd);
  errno = e;
  return fd;
}

// Whether rootLength names the walk's root in a path of plen bytes (trailing slashes dropped): a whole number
// of bytes, at least 1, short of the path's end, ending at a '/' (its own last byte, or the next one).
static bool root_length_ok(const char *path, size_t plen, double rootLength) {
  return rootLength >= 1 && rootLength < (double)plen && rootLength == (double)(size_t)rootLength &&
         (path[(size_t)rootLength - 1] == '/' || path[(size_t)rootLength] == '/');
}

// listdir(dir: Buffer, follow?: boolean, linePrefix?: Buffer, rootLength?: number)
//   → [names: string, stats: Float64Array, targets?: string, lines?: string]
// names: the entries but . and .., sorted bytewise, as latin1 text joined by
// "\0" (a name holds neither NUL nor '/'); stats: FIELDS doubles per entry in
// the same order; targets: the target of each entry that its stats call a
// symlink, in the same order, latin1 joined by "\0" (a target holds no NUL),
// read with readlinkat relative to the directory, empty where that failed
// (no symlink has an empty target: the caller asks again by path, for the
// error); lines, when linePrefix is given (the directory's escaped path and
// a slash, or nothing for the root): each entry's manifest line, joined by
// "\n" (a line has none: the escape takes it), empty where its stats or
// target failed or it is a socket (the caller makes those itself). targets
// and lines are left out when their memory could not be had. Without
// `follow` the directory is opened with O_NOFOLLOW (its trailing slashes
// dropped, or they would follow it): a symlink put in its place is not
// followed. The walk's root is opened as given (it may be a symlink the
// operator named, as node:fs follows it). With rootLength (the bytes of
// `dir` that name the walk's root), no component below the root may be a
// symlink either (open_dir_beneath): a directory higher up swapped for a
// symlink since the walk listed it does not lead the listing elsewhere.
//
// Why the lines here (issue 14, usr delta warm, --cpu-prof of the agent):
// building each entry's line in JavaScript (two times as text, the escape
// test, a join of 14 fields) was about a third of listDirectory's time on
// the delta's main thread.
static napi_value listdir(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  bool isBuffer = false, follow = false, prefixIsBuffer = false;
  napi_valuetype followType = napi_undefined, prefixType = napi_undefined;
  char *data = NULL, *prefix = NULL;
  size_t len = 0, prefixLen = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_is_buffer(env, argv[0], &isBuffer) != napi_ok ||
      !isBuffer || napi_get_buffer_info(env, argv[0], (void **)&data, &len) != napi_ok ||
      (argc > 1 && (napi_typeof(env, argv[1], &followType) != napi_ok ||
                    (followType != napi_undefined && napi_get_value_bool(env, argv[1], &follow) != napi_ok)))) {
    napi_throw_type_error(env, NULL, "listdir(dir: Buffer, follow?: boolean, linePrefix?: Buffer, rootLength?: number)");
    return NULL;
  }
  if (argc > 2 && (napi_typeof(env, argv[2], &prefixType) != napi_ok ||
                   (prefixType != napi_undefined && (napi_is_buffer(env, argv[2], &prefixIsBuffer) != napi_ok || !prefixIsBuffer ||
                                                     napi_get_buffer_info(env, argv[2], (void **)&prefix, &prefixLen) != napi_ok)))) {
    napi_throw_type_error(env, NULL, "listdir(dir: Buffer, follow?: boolean, linePrefix?: Buffer, rootLength?: number)");
    return NULL;
  }
  napi_valuetype rootType = napi_undefined;
  double rootLength = 0;
  if (argc > 3 && (napi_typeof(env, argv[3], &rootType) != napi_ok ||
                   (rootType != napi_undefined && napi_get_value_double(env, argv[3], &rootLength) != napi_ok))) {
    napi_throw_type_error(env, NULL, "listdir(dir: Buffer, follow?: boolean, linePrefix?: Buffer, rootLength?: number)");
    return NULL;
  }
  // Empty buffers may come without memory: a prefix of no bytes.
  if (prefixType != napi_undefined && prefix == NULL) prefix = "";
  if (len == 0 || memchr(data, 0, len) != NULL) {
    napi_throw_type_error(env, NULL, "listdir: a path of at least one byte, without NUL");
    return NULL;
  }
  // The path as given, for messages; too long for the kernel as given (node:fs's readdir fails the same way).
  char shown[SHOWN_BYTES];
  memcpy(shown, data, len < SHOWN_BYTES ? len : SHOWN_BYTES - 1);
  shown[len < SHOWN_BYTES ? len : SHOWN_BYTES - 1] = 0;
  if (len >= PATH_BYTES) {
    throw_error(env, ENAMETOOLONG, NULL, shown);
    return NULL;
  }
  // The path opened: without its trailing slashes (but "/") unless following, or they would follow it.
  char path[PATH_BYTES];
  size_t plen = len;
  if (!follow) while (plen > 1 && data[plen - 1] == '/') plen--;
  memcpy(path, data, plen);
  path[plen] = 0;

  if (rootType != napi_undefined && (follow || !root_length_ok(path, plen, rootLength))) {
    napi_throw_range_error(env, NULL, "listdir: rootLength must be a whole number of bytes of the path that ends at a '/', without follow");
    return NULL;
  }
  int fd = rootType != napi_undefined ? open_dir_beneath(path, plen, (size_t)rootLength)
                                      : (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
  if (fd < 0) {
    throw_error(env, errno, NULL, shown);
    return NULL;
  }
  // The directory's path as the entries' full paths start (the root may end in slashes).
  size_t dirLen = len;
  while (dirLen > 1 && data[dirLen - 1] == '/') dirLen--;
  size_t cap = 1 << 15, used = 0, n = 0, ecap = 64;
  char *names = malloc(cap);
  struct entry *ents = malloc(ecap * sizeof *ents);
  char buf[32768] __attribute__((aligned(8)));
  int failed = 0;
  int tooMany = 0;
  if (names == NULL || ents == NULL) failed = ENOMEM;
  while (!failed) {
    long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (r < 0) {
      failed = errno;
      break;
    }
    if (r == 0) break;
    for (long off = 0; off < r;) {
      struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
      off += d->d_reclen;
      const char *nm = d->d_name;
      if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
      if (n == MAX_ENTRIES) {
        tooMany = 1;
        break;
      }
      size_t l = strlen(nm);
      if (used + l + 1 > cap) {
        while (used + l + 1 > cap) cap *= 2;
        char *more = realloc(names, cap);
        if (more == NULL) {
          failed = ENOMEM;
          break;
        }
        names = more;
      }
      if (n == ecap) {
        ecap *= 2;
        struct entry *more = realloc(ents, ecap * sizeof *ents);
        if (more == NULL) {
          failed = ENOMEM;
          break;
        }
        ents = more;
      }
      struct entry *e = &ents[n++];
      memcpy(names + used, nm, l + 1);
      e->name = used;
      e->len = l;
      used += l + 1;
    }
    if (tooMany) break;
  }
  if (failed || tooMany) {
    close(fd);
    free(names);
    free(ents);
    // Not the directory's own errors: the caller lists it with node:fs.
    if (tooMany) throw_error(env, 0, "FERRY_NATIVE_TOO_MANY", shown);
    else if (failed == ENOMEM) throw_error(env, 0, "FERRY_NATIVE_NOMEM", shown);
    else throw_error(env, failed, NULL, shown);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) ents[i].at = names + ents[i].name;
  if (n > 1) qsort(ents, n, sizeof *ents, by_name);

  // The names joined by NUL, in the sorted order, as latin1 (one char per byte).
  size_t total = n == 0 ? 0 : used - 1;
  char *joined = malloc(total + 1);
  napi_value out = NULL, text, arr, ab;
  void *abData;
  // The symlinks' targets, joined by NUL, and the lines, joined by "\n" (see above).
  struct text links = {NULL, 0, 0, 1}, lines = {NULL, 0, 0, prefix != NULL};
  size_t nlinks = 0;
  if (joined == NULL) {
    close(fd);
    free(names);
    free(ents);
    throw_error(env, 0, "FERRY_NATIVE_NOMEM", shown);
    return NULL;
  }
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(joined + at, ents[i].at, ents[i].len);
    at += ents[i].len;
    if (i + 1 < n) joined[at++] = 0;
  }
  if (napi_create_string_latin1(env, joined, total, &text) == napi_ok &&
      napi_create_arraybuffer(env, n * FIELDS * sizeof(double), &abData, &ab) == napi_ok &&
      napi_create_typedarray(env, napi_float64_array, n * FIELDS, ab, 0, &arr) == napi_ok &&
      napi_create_array_with_length(env, prefix != NULL ? 4 : 3, &out) == napi_ok) {
    // Each entry's lstat, in the sorted order, straight into the result (every name was read first:
    // a directory too large was given up before any lstat).
    for (size_t i = 0; i < n; i++) {
      double *a = (double *)abData + i * FIELDS;
      struct stat st;
      if (i > 0) text_char(&lines, '\n');
      if (dirLen + 1 + ents[i].len >= PATH_BYTES) {
        // Unreachable by its full path, as node:fs would find it.
        memset(a, 0, FIELDS * sizeof(double));
        a[6] = -(double)ENAMETOOLONG;
      } else if (syscall(SYS_newfstatat, fd, ents[i].at, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        fill(a, &st);
        char target[PATH_BYTES];
        long tl = 0;
        if (S_ISLNK(st.st_mode)) {
          // Its target, relative to the directory (measured, /usr tree warm: readlinkSync by full path
          // took about 12 us a symlink in a delta's walk).
          long r = syscall(SYS_readlinkat, fd, ents[i].at, target, sizeof target);
          tl = r > 0 && r < (long)sizeof target ? r : 0;
          if (nlinks++ > 0) text_char(&links, 0);
          text_put(&links, target, (size_t)tl);
        }
        if (lines.ok) manifest_line(&lines, prefix, prefixLen, ents[i].at, ents[i].len, &st, target, tl);
        if (lines.used > LINES_BYTES) lines.ok = 0;
      } else {
        memset(a, 0, FIELDS * sizeof(double));
        a[6] = -(double)errno;
      }
    }
    napi_value targets, linesText;
    if (napi_set_element(env, out, 0, text) != napi_ok || napi_set_element(env, out, 1, arr) != napi_ok) out = NULL;
    else if (links.ok && (napi_create_string_latin1(env, links.used > 0 ? links.p : "", links.used, &targets) != napi_ok ||
                          napi_set_element(env, out, 2, targets) != napi_ok)) out = NULL;
    else if (lines.ok && (napi_create_string_latin1(env, lines.used > 0 ? lines.p : "", lines.used, &linesText) != napi_ok ||
                          napi_set_element(env, out, 3, linesText) != napi_ok)) out = NULL;
  }
  close(fd);
  free(links.p);
  free(lines.p);
  free(joined);
  free(names);
  free(ents);
  // A result that could not be made is an exception without .errno (the caller lists with node:fs).
  if (out == NULL) throw_error(env, 0, "FERRY_NATIVE_FAILED", shown);
  return out;
}

// The bytes of an xattr list or value, into `stack` when it fits, else into a
// malloc'ed buffer of the size the kernel asks for (retried while it grows
// between the size query and the read). Returns the length, or -errno; *out is
// `stack` or a buffer for the caller to free.
static ssize_t xattr_read(int fd, const char *path, const char *name, char *stack, size_t stackLen, char **out) {
  *out = stack;
  for (int tries = 0; tries < 8; tries++) {
    char *dst = tries == 0 ? stack : *out;
    size_t cap = tries == 0 ? stackLen : 0;
    if (tries > 0) {
      // The size it has now, then a buffer of that size.
      ssize_t want = name == NULL ? (fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0))
                                  : (fd >= 0 ? fgetxattr(fd, name, NULL, 0) : lgetxattr(path, name, NULL, 0));
      if (want < 0) return -errno;
      // Empty now: nothing to read (a read with size 0 would only give the size again, not bytes).
      if (want == 0) return 0;
      if (*out != stack) free(*out);
      *out = malloc((size_t)want);
      if (*out == NULL) {
        *out = stack;
        return -ENOMEM;
      }
      dst = *out;
      cap = (size_t)want;
    }
    ssize_t got = name == NULL ? (fd >= 0 ? flistxattr(fd, dst, cap) : llistxattr(path, dst, cap))
                               : (fd >= 0 ? fgetxattr(fd, name, dst, cap) : lgetxattr(path, name, dst, cap));
    if (got >= 0) return got;
    if (errno != ERANGE) return -errno;
  }
  return -ERANGE;
}

// Every xattr of an open file (fd >= 0) or of a path (never following a
// symlink there) into `out`, one after the other as u32 name length, name,
// u32 value length, value (native byte order; with namesOnly, no value and a
// length of UINT32_MAX); the kernel's order. One removed between the list and
// its read (ENODATA) is left out. Returns how many, or -errno with *failedIn
// the call that failed; ENOTSUP (a file system without xattrs) is none. When
// `out` runs out of memory, out->ok goes 0 (the caller fails the call). No
// napi: it runs on libuv's pool for readFiles.
static int xattrs_collect(int fd, const char *path, int namesOnly, struct text *out, const char **failedIn) {
  char listStack[4096];
  char *list;
  ssize_t n = xattr_read(fd, path, NULL, listStack, sizeof listStack, &list);
  if (n == -ENOTSUP || n == 0) {
    if (list != listStack) free(list);
    return 0;
  }
  if (n < 0) {
    if (list != listStack) free(list);
    *failedIn = fd >= 0 ? "flistxattr" : "llistxattr";
    return (int)n;
  }
  char valueStack[4096];
  int count = 0, failed = 0;
  for (ssize_t at = 0; at < n;) {
    const char *name = list + at;
    size_t nl = strnlen(name, (size_t)(n - at));
    at += (ssize_t)nl + 1;
    if (nl == 0) continue;
    uint32_t u = (uint32_t)nl;
    if (namesOnly) {
      text_put(out, (const char *)&u, sizeof u);
      text_put(out, name, nl);
      u = UINT32_MAX;
      text_put(out, (const char *)&u, sizeof u);
      count++;
      continue;
    }
    char *value;
    ssize_t vl = xattr_read(fd, path, name, valueStack, sizeof valueStack, &value);
    if (vl == -ENODATA || vl == -ENOTSUP) {
      // Removed since the list (or not readable as such): as if it had not been there.
      if (value != valueStack) free(value);
      continue;
    }
    if (vl < 0) {
      if (value != valueStack) free(value);
      failed = (int)vl;
      *failedIn = fd >= 0 ? "fgetxattr" : "lgetxattr";
      break;
    }
    text_put(out, (const char *)&u, sizeof u);
    text_put(out, name, nl);
    u = (uint32_t)vl;
    text_put(out, (const char *)&u, sizeof u);
    text_put(out, value, (size_t)vl);
    if (value != valueStack) free(value);
    count++;
  }
  if (list != listStack) free(list);
  return failed ? failed : count;
}

// `len` bytes of xattrs_collect's output as [name, value, name, value, …]
// (latin1 names; values Buffers, null where only names were read), or NULL
// when napi fails or a record does not fit in `len`.
static napi_value xattrs_array(napi_env env, const char *blob, size_t len) {
  napi_value out;
  if (napi_create_array(env, &out) != napi_ok) return NULL;
  uint32_t k = 0;
  for (size_t at = 0; at < len;) {
    uint32_t nl, vl;
    if (len - at < 2 * sizeof(uint32_t)) return NULL;
    memcpy(&nl, blob + at, sizeof nl);
    if (nl > len - at - 2 * sizeof(uint32_t)) return NULL;
    const char *name = blob + at + sizeof nl;
    memcpy(&vl, name + nl, sizeof vl);
    if (vl != UINT32_MAX && vl > len - at - 2 * sizeof(uint32_t) - nl) return NULL;
    const char *value = name + nl + sizeof vl;
    at += 2 * sizeof(uint32_t) + nl + (vl == UINT32_MAX ? 0 : vl);
    napi_value nv, vv;
    void *copied;
    if (napi_create_string_latin1(env, name, nl, &nv) != napi_ok ||
        (vl == UINT32_MAX ? napi_get_null(env, &vv) : napi_create_buffer_copy(env, vl, value, &copied, &vv)) != napi_ok ||
        napi_set_element(env, out, k, nv) != napi_ok || napi_set_element(env, out, k + 1, vv) != napi_ok)
      return NULL;
    k += 2;
  }
  return out;
}

// openDirBeneath(path: Buffer, rootLength: number) → fd
// The directory `path` opened (O_RDONLY, O_CLOEXEC) as listdir opens one below the walk's root
// (open_dir_beneath): its first rootLength bytes, ending at a '/', name the root, and no component below it
// may be a symlink. For reading a directory's xattrs on its fd instead of by path (tar-producer.ts): a
// directory swapped for a symlink above it since the walk does not give another one's. The caller closes
// the fd. Errors are node:fs-like (open 'path', with .errno).
static napi_value openDirBeneath(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  bool isBuffer = false;
  char *data = NULL;
  size_t len = 0;
  double rootLength = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_is_buffer(env, argv[0], &isBuffer) != napi_ok ||
      !isBuffer || napi_get_buffer_info(env, argv[0], (void **)&data, &len) != napi_ok ||
      napi_get_value_double(env, argv[1], &rootLength) != napi_ok) {
    napi_throw_type_error(env, NULL, "openDirBeneath(path: Buffer, rootLength: number)");
    return NULL;
  }
  if (len == 0 || memchr(data, 0, len) != NULL) {
    napi_throw_type_error(env, NULL, "openDirBeneath: a path of at least one byte, without NUL");
    return NULL;
  }
  char shown[SHOWN_BYTES];
  memcpy(shown, data, len < SHOWN_BYTES ? len : SHOWN_BYTES - 1);
  shown[len < SHOWN_BYTES ? len : SHOWN_BYTES - 1] = 0;
  if (len >= PATH_BYTES) {
    throw_error_in(env, ENAMETOOLONG, NULL, "open", shown);
    return NULL;
  }
  size_t plen = len;
  while (plen > 1 && data[plen - 1] == '/') plen--;
  if (!root_length_ok(data, plen, rootLength)) {
    napi_throw_range_error(env, NULL, "openDirBeneath: rootLength must be a whole number of bytes of the path that ends at a '/'");
    return NULL;
  }
  char path[PATH_BYTES];
  memcpy(path, data, plen);
  path[plen] = 0;
  int fd = open_dir_beneath(path, plen, (size_t)rootLength);
  if (fd < 0) {
    throw_error_in(env, errno, NULL, "open", shown);
    return NULL;
  }
  if (napi_create_int32(env, fd, &out) != napi_ok) {
    close(fd);
    napi_throw_error(env, NULL, "ferry-fs: openDirBeneath failed");
    return NULL;
  }
  return out;
}

// closeFd(fd: number): closes an fd openDirBeneath gave. On a worker thread node:fs's closeSync warns about an fd
// its own open did not make ("closed but not opened in unmanaged mode"), once per directory a walk reads that way.
static napi_value closeFd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_double(env, argv[0], &fd) != napi_ok ||
      !(fd >= 0 && fd <= 2147483647.0) || fd != (double)(int)fd) {
    napi_throw_type_error(env, NULL, "closeFd(fd: a whole number from 0)");
    return NULL;
  }
  if (close((int)fd) != 0) {
    throw_error_in(env, errno, NULL, "close", NULL);
    return NULL;
  }
  return NULL;
}

// xattrs(target: number | Buffer, namesOnly?: boolean) → null | [name, value, name, value, …]
// (with namesOnly, each value is null and none is read)
// Every extended attribute (POSIX ACLs included: system.posix_acl_*) of an
// open file (an fd) or of a path, never following a symlink there
// (llistxattr, lgetxattr); null when it has none or its file system keeps
// none (ENOTSUP). Names are latin1 text (one char a byte: the caller
// decodes them, and refuses those that are not UTF-8) in the kernel's order,
// values Buffers; one removed between the list and its read is left out. Errors
// are node:fs-like (llistxattr 'path' / flistxattr, with .errno).
//
// Why (issue 14, whole-server bench, perf of the agent): listing xattrs by
// path through @napi-rs/xattr cost 7-9 us an entry on the agent's main thread
// (0.43 s of a run whose files have none); on the fd the small-file reader
// already holds, flistxattr is one short syscall.
static napi_value xattrs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype type = napi_undefined, namesType = napi_undefined;
  bool isBuffer = false, namesOnly = false;
  int fd = -1;
  char *data = NULL;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok ||
      (argc > 1 && (napi_typeof(env, argv[1], &namesType) != napi_ok ||
                    (namesType != napi_undefined && napi_get_value_bool(env, argv[1], &namesOnly) != napi_ok)))) {
    napi_throw_type_error(env, NULL, "xattrs(target: number | Buffer, namesOnly?: boolean)");
    return NULL;
  }
  if (type == napi_number) {
    double d = -1;
    if (napi_get_value_double(env, argv[0], &d) != napi_ok || !(d >= 0 && d <= 2147483647.0) || d != (double)(int)d) {
      napi_throw_type_error(env, NULL, "xattrs: an fd is a non-negative integer");
      return NULL;
    }
    fd = (int)d;
  } else if (napi_is_buffer(env, argv[0], &isBuffer) != napi_ok || !isBuffer || napi_get_buffer_info(env, argv[0], (void **)&data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "xattrs(target: number | Buffer)");
    return NULL;
  } else if (len == 0 || memchr(data, 0, len) != NULL) {
    napi_throw_type_error(env, NULL, "xattrs: a path of at least one byte, without NUL");
    return NULL;
  }
  char shown[SHOWN_BYTES];
  char path[PATH_BYTES];
  if (fd < 0) {
    memcpy(shown, data, len < SHOWN_BYTES ? len : SHOWN_BYTES - 1);
    shown[len < SHOWN_BYTES ? len : SHOWN_BYTES - 1] = 0;
    if (len >= PATH_BYTES) {
      throw_error_in(env, ENAMETOOLONG, NULL, "llistxattr", shown);
      return NULL;
    }
    memcpy(path, data, len);
    path[len] = 0;
  } else {
    path[0] = 0;
    snprintf(shown, sizeof shown, "fd %d", fd);
  }
  struct text blob = {NULL, 0, 0, 1};
  const char *failedIn = NULL;
  int n = xattrs_collect(fd, path, namesOnly, &blob, &failedIn);
  napi_value out = NULL;
  if (n < 0) {
    free(blob.p);
    throw_error_in(env, -n, NULL, failedIn, shown);
    return NULL;
  }
  if (n == 0) {
    free(blob.p);
    napi_get_null(env, &out);
    return out;
  }
  if (blob.ok) out = xattrs_array(env, blob.p, blob.used);
  free(blob.p);
  if (out == NULL) {
    throw_error_in(env, 0, "FERRY_NATIVE_FAILED", NULL, shown);
    return NULL;
  }
  return out;
}

// readFiles: small files read whole on libuv's thread pool, a batch a call.
//
// readFiles(paths: Buffer, sizes: Float64Array, buffer: ArrayBuffer, flags: number, withXattrs?: boolean)
//   → Promise<Float64Array>, or with withXattrs Promise<[Float64Array, (null | number | list)[]]>
// paths: each file's path, NUL-terminated, one after the other; sizes: each
// file's size as the walk saw it; file i is read into buffer at the sum of
// (size + 1) of the files before it, up to size + 1 bytes (one more, to see
// growth), stopping once its walked size is in; then fstat'ed and closed.
// The result has READ_FIELDS doubles a file: 0 or -errno, the bytes read,
// whether it is a regular file, its inode and size as high and low 32 bits,
// mtime and ctime as seconds and nanoseconds, where it failed (0 open,
// 1 read, 2 fstat), and its device as high and low 32 bits (with the inode,
// which file was read: the one the walk listed, or another put in its way). The files are read into the job's own memory and copied
// into `buffer` on the calling thread when the job ends (a buffer detached or
// too short by then fails the call instead); a file that is not a regular
// file when opened is not read (status 0, not a regular file).
// withXattrs: each file read is also asked for its xattrs on the fd it holds
// (flistxattr, fgetxattr), after its bytes; per file, the second result holds
// null (none), the list as xattrs() gives it, or -errno where reading them
// failed (the caller reads them by path, as without this flag); a file not
// read has null.
//
// Why (issue 14, /usr full copy, --cpu-prof of the agent): the pass thread
// read each small file with blocking calls, one at a time, and spent 3.1 s of
// a 7.5 s pass in read() of cold files; its listings and compression waited
// behind them. Here the reads of up to four batches (libuv's pool) wait on
// the disk at once, outside any JavaScript thread, and a batch costs one
// trip to the pool instead of four calls a file. Measured alone (37,756
// small files of the tree, caches dropped, open/read/fstat/close): one
// thread 1.80 s, four threads 1.25-1.28 s. withXattrs reads their xattrs on
// the same fd, off the main thread too: the agent's main thread had listed
// every small file's by path (0.2-0.3 s of a /usr full copy whose files
// mostly have none; measured 2026-12-07).
#define READ_FIELDS 14

struct read_job {
  char *paths;  // copied
  size_t count;
  double *sizes;  // copied
  unsigned char *data;  // the job's own: copied into the caller's buffer on its thread at the end
  size_t dataLen;
  int flags;
  double *out;
  // withXattrs: every file's xattrs_collect result (count or -errno) and where its bytes start in xblob.
  int withXattrs;
  int *xres;
  size_t *xoff;
  struct text xblob;
  napi_ref buffer;
  napi_async_work work;
  napi_deferred deferred;
};

static void read_job_free(napi_env env, struct read_job *job) {
  if (job->buffer != NULL) napi_delete_reference(env, job->buffer);
  free(job->paths);
  free(job->sizes);
  free(job->out);
  free(job->data);
  free(job->xres);
  free(job->xoff);
  free(job->xblob.p);
  free(job);
}

// One file of a batch, opened and found a regular file: its bytes at `at` in the job's data (each file's
// place is its size and one more byte, in order), then its fstat after the read; closes fd.
static void read_one(struct read_job *job, size_t i, size_t at, int fd) {
  double *r = job->out + i * READ_FIELDS;
  size_t size = (size_t)job->sizes[i];
  unsigned char *buf = job->data + at;
  struct stat st;
  size_t got = 0;
  for (;;) {
    ssize_t n = pread(fd, buf + got, size + 1 - got, (off_t)got);
    if (n < 0) {
      if (errno == EINTR) continue;
      r[0] = -(double)errno;
      r[11] = 1;
      break;
    }
    got += (size_t)n;
    if (n == 0 || got >= size) break;
  }
  if (r[0] == 0) {
    if (syscall(SYS_fstat, fd, &st) != 0) {
      r[0] = -(double)errno;
      r[11] = 2;
    } else {
      r[1] = (double)got;
      r[2] = S_ISREG(st.st_mode) ? 1 : 0;
      r[3] = (double)((uint64_t)st.st_ino >> 32);
      r[4] = (double)((uint64_t)st.st_ino & 0xffffffffu);
      r[5] = (double)((uint64_t)st.st_size >> 32);
      r[6] = (double)((uint64_t)st.st_size & 0xffffffffu);
      r[7] = (double)st.st_mtim.tv_sec;
      r[8] = (double)st.st_mtim.tv_nsec;
      r[9] = (double)st.st_ctim.tv_sec;
      r[10] = (double)st.st_ctim.tv_nsec;
      r[12] = (double)((uint64_t)st.st_dev >> 32);
      r[13] = (double)((uint64_t)st.st_dev & 0xffffffffu);
      if (job->withXattrs && r[2] == 1) {
        const char *failedIn = NULL;
        job->xres[i] = xattrs_collect(fd, "", 0, &job->xblob, &failedIn);
        if (!job->xblob.ok) {
          // No memory for this file's: it alone goes without (the caller reads them by path), the batch goes on.
          job->xblob.used = job->xoff[i];
          job->xblob.ok = 1;
          job->xres[i] = -ENOMEM;
        }
      }
    }
  }
  close(fd);
}

// Why the batch is opened first and each file's pages asked for at once (POSIX_FADV_WILLNEED) before any
// is read (issue 14, /usr full copy, cold cache): read one after the other, a batch kept one read waiting
// on the disk at a time, so the three batches in flight were a queue depth of three, and the stream
// waited on small-file reads for 1.7-2.4 s of a cold pass. The hint starts the reads of all of the
// batch's files (the kernel's asynchronous readahead) before the first pread waits; pages already in the
// page cache are not read again.
static void read_execute(napi_env env, void *data) {
  (void)env;
  struct read_job *job = data;
  // The files are taken OPEN_FIRST at a time (the caller's batches hold 32): each of those opened, checked and
  // hinted, then read in order; a call never holds more fds than that. Each one's fd while it is open, -1
  // once it is done with (an error, or not a regular file: its fields say).
  enum { OPEN_FIRST = 64 };
  int fds[OPEN_FIRST];
  const char *p = job->paths;
  size_t at = 0;
  for (size_t from = 0; from < job->count; from += OPEN_FIRST) {
    size_t to = job->count - from < OPEN_FIRST ? job->count : from + OPEN_FIRST;
    for (size_t i = from; i < to; i++) {
      double *r = job->out + i * READ_FIELDS;
      const char *path = p;
      p += strlen(p) + 1;
      memset(r, 0, READ_FIELDS * sizeof(double));
      if (job->withXattrs) job->xres[i] = 0;
      // O_NONBLOCK: a FIFO put in a file's place opens at once instead of holding this pool thread (and
      // every other user of libuv's pool) until a writer comes; what is not a regular file is not read.
      int fd = (int)syscall(SYS_openat, AT_FDCWD, path, job->flags | O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      struct stat st;
      if (fd < 0) {
        r[0] = -(double)errno;
      } else if (syscall(SYS_fstat, fd, &st) != 0) {
        r[0] = -(double)errno;
        r[11] = 2;
        close(fd);
        fd = -1;
      } else if (!S_ISREG(st.st_mode)) {
        // Not a file any more (r[2] stays 0): the caller's verdict is "vanished".
        close(fd);
        fd = -1;
      } else {
        // Only a hint: whatever it returns, the reads below are what count.
        syscall(SYS_fadvise64, fd, (off_t)0, (off_t)((size_t)job->sizes[i] + 1), POSIX_FADV_WILLNEED);
      }
      fds[i - from] = fd;
    }
    for (size_t i = from; i < to; i++) {
      // Where each file's xattrs start in xblob, in order (read_xattrs_result takes each file's up to the next one's).
      if (job->withXattrs) job->xoff[i] = job->xblob.used;
      if (fds[i - from] >= 0) read_one(job, i, at, fds[i - from]);
      at += (size_t)job->sizes[i] + 1;
    }
  }
}

// A plain Error with this message, to reject with.
static napi_value plain_error(napi_env env, const char *message) {
  napi_value m, err = NULL;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &m) != napi_ok || napi_create_error(env, NULL, m, &err) != napi_ok) {
    napi_get_undefined(env, &err);
  }
  return err;
}

// [fields, xattrs]: per file null, -errno, or its list (see readFiles); NULL when napi or memory fails.
static napi_value read_xattrs_result(napi_env env, struct read_job *job, napi_value fields) {
  napi_value pair, lists;
  if (!job->xblob.ok || napi_create_array_with_length(env, 2, &pair) != napi_ok || napi_create_array_with_length(env, job->count, &lists) != napi_ok)
    return NULL;
  for (size_t i = 0; i < job->count; i++) {
    napi_value v = NULL;
    int x = job->xres[i];
    if (x == 0) napi_get_null(env, &v);
    else if (x < 0) napi_create_int32(env, x, &v);
    else v = xattrs_array(env, job->xblob.p + job->xoff[i], (i + 1 < job->count ? job->xoff[i + 1] : job->xblob.used) - job->xoff[i]);
    if (v == NULL || napi_set_element(env, lists, (uint32_t)i, v) != napi_ok) return NULL;
  }
  if (napi_set_element(env, pair, 0, fields) != napi_ok || napi_set_element(env, pair, 1, lists) != napi_ok) return NULL;
  return pair;
}

static void read_complete(napi_env env, napi_status status, void *data) {
  struct read_job *job = data;
  napi_value ab, arr, buffer;
  void *abData, *callerData = NULL;
  size_t callerLen = 0;
  bool detached = true;
  // The bytes go into the caller's buffer here, on its thread, and only if it is still there and still
  // holds them (a buffer detached, transferred or resized meanwhile is not written into).
  bool ok = status == napi_ok && napi_get_reference_value(env, job->buffer, &buffer) == napi_ok && buffer != NULL &&
            napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && !detached &&
            napi_get_arraybuffer_info(env, buffer, &callerData, &callerLen) == napi_ok && callerLen >= job->dataLen;
  if (ok && napi_create_arraybuffer(env, job->count * READ_FIELDS * sizeof(double), &abData, &ab) == napi_ok &&
      napi_create_typedarray(env, napi_float64_array, job->count * READ_FIELDS, ab, 0, &arr) == napi_ok) {
    // Each file's bytes read, at its place (nothing else: the rest of the caller's buffer is left as it was).
    size_t at = 0;
    for (size_t i = 0; i < job->count; i++) {
      size_t got = job->out[i * READ_FIELDS] == 0 ? (size_t)job->out[i * READ_FIELDS + 1] : 0;
      if (got > 0) memcpy((unsigned char *)callerData + at, job->data + at, got);
      at += (size_t)job->sizes[i] + 1;
    }
    memcpy(abData, job->out, job->count * READ_FIELDS * sizeof(double));
    napi_value result = arr;
    if (job->withXattrs) result = read_xattrs_result(env, job, arr);
    if (result != NULL) napi_resolve_deferred(env, job->deferred, result);
    else napi_reject_deferred(env, job->deferred, plain_error(env, "ferry-fs: readFiles failed"));
  } else {
    napi_reject_deferred(env, job->deferred, plain_error(env, ok ? "ferry-fs: readFiles failed" : "ferry-fs: readFiles' buffer went away"));
  }
  napi_delete_async_work(env, job->work);
  read_job_free(env, job);
}

static napi_value readFiles(napi_env env, napi_callback_info info) {
  const char *usage = "readFiles(paths: Buffer, sizes: Float64Array, buffer: ArrayBuffer, flags: number, withXattrs?: boolean)";
  size_t argc = 5;
  napi_value argv[5], promise, name;
  napi_valuetype xType = napi_undefined;
  bool withXattrs = false;
  bool isBuffer = false, isTyped = false, isAb = false;
  char *paths = NULL;
  size_t pathsLen = 0, count = 0, abLen = 0;
  void *sizes = NULL, *abData = NULL;
  napi_typedarray_type type;
  napi_value sizesAb;
  size_t sizesOffset = 0;
  int32_t flags = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || napi_is_buffer(env, argv[0], &isBuffer) != napi_ok ||
      !isBuffer || napi_get_buffer_info(env, argv[0], (void **)&paths, &pathsLen) != napi_ok ||
      napi_is_typedarray(env, argv[1], &isTyped) != napi_ok || !isTyped ||
      napi_get_typedarray_info(env, argv[1], &type, &count, &sizes, &sizesAb, &sizesOffset) != napi_ok || type != napi_float64_array ||
      napi_is_arraybuffer(env, argv[2], &isAb) != napi_ok || !isAb || napi_get_arraybuffer_info(env, argv[2], &abData, &abLen) != napi_ok ||
      napi_get_value_int32(env, argv[3], &flags) != napi_ok ||
      (argc > 4 && (napi_typeof(env, argv[4], &xType) != napi_ok || (xType != napi_undefined && napi_get_value_bool(env, argv[4], &withXattrs) != napi_ok)))) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  // Exactly `count` NUL-terminated paths, none empty, and room for every file and its extra byte.
  size_t seen = 0, need = 0;
  bool ok = pathsLen > 0 && paths[pathsLen - 1] == 0;
  for (size_t i = 0; ok && i < pathsLen; i++) {
    if (paths[i] == 0) {
      if (i == 0 || paths[i - 1] == 0) ok = false;
      seen++;
    }
  }
  for (size_t i = 0; ok && i < count; i++) {
    double z = ((double *)sizes)[i];
    if (!(z >= 0 && z <= 1073741824.0) || z != (double)(size_t)z) ok = false;
    else need += (size_t)z + 1;
  }
  if (!ok || seen != count || count == 0 || need > abLen) {
    napi_throw_type_error(env, NULL, "readFiles: one NUL-terminated path per size, sizes whole and small, and a buffer that holds them all");
    return NULL;
  }
  struct read_job *job = calloc(1, sizeof *job);
  if (job != NULL) {
    job->paths = malloc(pathsLen);
    job->sizes = malloc(count * sizeof(double));
    job->out = malloc(count * READ_FIELDS * sizeof(double));
    job->xblob.ok = 1;
    job->withXattrs = withXattrs;
    if (withXattrs) {
      job->xres = malloc(count * sizeof(int));
      job->xoff = malloc(count * sizeof(size_t));
    }
  }
  if (job == NULL || job->paths == NULL || job->sizes == NULL || job->out == NULL || (withXattrs && (job->xres == NULL || job->xoff == NULL))) {
    if (job != NULL) read_job_free(env, job);
    napi_throw_error(env, "FERRY_NATIVE_NOMEM", "ferry-fs: no memory for a batch of reads");
    return NULL;
  }
  memcpy(job->paths, paths, pathsLen);
  memcpy(job->sizes, sizes, count * sizeof(double));
  job->count = count;
  job->dataLen = need;
  // Only these open flags are taken (reading is always O_RDONLY; see read_execute for O_NONBLOCK).
  job->flags = flags & (O_NOFOLLOW | O_NOATIME);
  job->data = malloc(need);
  if (job->data == NULL) {
    read_job_free(env, job);
    napi_throw_error(env, "FERRY_NATIVE_NOMEM", "ferry-fs: no memory for a batch of reads");
    return NULL;
  }
  if (napi_create_reference(env, argv[2], 1, &job->buffer) != napi_ok ||
      napi_create_string_utf8(env, "ferry-fs readFiles", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, read_execute, read_complete, job, &job->work) != napi_ok) {
    read_job_free(env, job);
    napi_throw_error(env, NULL, "ferry-fs: readFiles could not start");
    return NULL;
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    napi_delete_async_work(env, job->work);
    read_job_free(env, job);
    napi_throw_error(env, NULL, "ferry-fs: readFiles could not start");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_reject_deferred(env, job->deferred, plain_error(env, "ferry-fs: readFiles could not start"));
    napi_delete_async_work(env, job->work);
    read_job_free(env, job);
  }
  return promise;
}

// writeFiles(buf: ArrayBuffer, files: Float64Array, flushOnClose: boolean) → Float64Array
// [done, index, errno, step]
// The receiver's batch of small new files (src/receiver/file-writers.ts), written on the calling thread (the
// writer's worker thread): for each file, WRITE_FIELDS doubles in `files` — where its temporary and final
// paths and its body are in `buf` (offset, length each), the mode it is created with, the mode to set (-1:
// none), owner and group (owner -1: no chown; group -1 with an owner: the group left as it is), mtime as whole
// seconds (before 1970: negative, rounded down) and nanoseconds (0-999,999,999), the size to truncate to (-1:
// none). Each is created under its final name with O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC (the flags
// node:fs's open gets there; only a name nothing holds; when something does, under its temporary name, then
// renamed over it), truncated to 0 first with `flushOnClose` and a body, written, truncated, given its owner,
// mode and mtime through the descriptor, closed. The same steps, in the same order, as the worker's node:fs
// loop they replace; the mtime is set to the microsecond as node:fs sets one (libuv), from the exact parts
// here, and a call the kernel interrupts (EINTR) is made again, as libuv does (a close interrupted, or in
// progress, is done). The first that fails stops the batch: its file is closed and removed (under whichever
// name it was created: only a file this call made), and `index` is that file, `errno` the error, `step` the
// call (WRITE_STEP_*); `done` files are in place before it. index -1: all done. Bad arguments (offsets outside
// buf, fields not whole numbers or out of range) throw a TypeError and nothing is written. The fields are
// copied before they are checked (a Float64Array on shared memory cannot change them in between).
//
// Why (issue 14, /usr full copy into xfs): the worker made five node:fs calls a file, each crossing from JS
// into C++ and checking its arguments; creating 40,000 small files cost 0.46 s user and 0.80-0.92 s system
// through node:fs, 0.12-0.14 s and 0.64-0.74 s through the same calls from C (one run each way, fresh xfs).
#define WRITE_FIELDS 13
// Whether v is a whole number in [lo, hi] (what a double from JS must be to stand for an offset, id or size).
static int whole(double v, double lo, double hi) { return v >= lo && v <= hi && v == (double)(int64_t)v; }
// The calls, as `step` names them (the last: the open of the temporary name, the final one being taken).
enum { WRITE_STEP_OPEN, WRITE_STEP_WRITE, WRITE_STEP_FTRUNCATE, WRITE_STEP_FCHOWN, WRITE_STEP_FCHMOD, WRITE_STEP_FUTIME, WRITE_STEP_CLOSE, WRITE_STEP_RENAME, WRITE_STEP_OPEN_TMP };

// A path of the batch as a C string in `out` (PATH_BYTES): 0, or ENAMETOOLONG (as the kernel says for a longer
// one), or EINVAL for a NUL inside it (node:fs refuses such a path too).
static int batch_path(const unsigned char *buf, const double *f, char *out) {
  size_t off = (size_t)f[0], len = (size_t)f[1];
  if (len >= PATH_BYTES) return ENAMETOOLONG;
  if (len == 0 || memchr(buf + off, 0, len) != NULL) return EINVAL;
  memcpy(out, buf + off, len);
  out[len] = 0;
  return 0;
}

// A system call's result, made again while the kernel interrupts it: 0 or the errno.
#define WRITE_CALL(call)           \
  ({                               \
    long r_;                       \
    do r_ = (long)(call);          \
    while (r_ < 0 && errno == EINTR); \
    r_ < 0 ? errno : 0;            \
  })

static napi_value writeFiles(napi_env env, napi_callback_info info) {
  const char *usage = "writeFiles(buf: ArrayBuffer, files: Float64Array, flushOnClose: boolean)";
  size_t argc = 3, count = 0, bufLen = 0, filesOffset = 0;
  napi_value argv[3], filesAb, ab, result;
  bool isAb = false, isTyped = false, flushOnClose = false;
  unsigned char *buf = NULL;
  double *given = NULL, *out = NULL;
  napi_typedarray_type type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || napi_is_arraybuffer(env, argv[0], &isAb) != napi_ok || !isAb ||
      napi_get_arraybuffer_info(env, argv[0], (void **)&buf, &bufLen) != napi_ok || napi_is_typedarray(env, argv[1], &isTyped) != napi_ok ||
      !isTyped || napi_get_typedarray_info(env, argv[1], &type, &count, (void **)&given, &filesAb, &filesOffset) != napi_ok ||
      type != napi_float64_array || count % WRITE_FIELDS != 0 || napi_get_value_bool(env, argv[2], &flushOnClose) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  size_t n = count / WRITE_FIELDS;
  double *f = malloc(count > 0 ? count * sizeof(double) : 1);
  if (f == NULL) {
    napi_throw_error(env, "FERRY_NATIVE_NOMEM", "ferry-fs: no memory for a batch of writes");
    return NULL;
  }
  if (count > 0) memcpy(f, given, count * sizeof(double));
  // Every field checked before anything is written: ranges inside buf, modes, ids, times and sizes whole and in range.
  for (size_t i = 0; i < n; i++) {
    const double *r = f + i * WRITE_FIELDS;
    bool ok = true;
    for (int k = 0; k < 6; k += 2) ok = ok && whole(r[k], 0, (double)bufLen) && whole(r[k + 1], 0, (double)bufLen - r[k]);
    ok = ok && whole(r[6], 0, 07777) && whole(r[7], -1, 07777) && whole(r[8], -1, 4294967294.0) && whole(r[9], -1, 4294967294.0) &&
         whole(r[10], -9007199254740991.0, 9007199254740991.0) && whole(r[11], 0, 999999999) && whole(r[12], -1, 9007199254740991.0);
    if (!ok) {
      free(f);
      napi_throw_type_error(env, NULL, "writeFiles: each file's fields in range (offsets inside buf, modes, ids, times, sizes whole)");
      return NULL;
    }
  }
  if (napi_create_arraybuffer(env, 4 * sizeof(double), (void **)&out, &ab) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, 4, ab, 0, &result) != napi_ok) {
    free(f);
    napi_throw_error(env, NULL, "ferry-fs: writeFiles could not start");
    return NULL;
  }
  char dst[PATH_BYTES], tmp[PATH_BYTES];
  const int open_flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  size_t i = 0;
  int err = 0, step = WRITE_STEP_OPEN;
  for (; i < n; i++) {
    const double *r = f + i * WRITE_FIELDS;
    const char *made = NULL;
    int fd = -1;
    step = WRITE_STEP_OPEN;
    err = batch_path(buf, r + 2, dst);
    if (err == 0) {
      err = WRITE_CALL(fd = (int)syscall(SYS_openat, AT_FDCWD, dst, open_flags, (mode_t)r[6]));
      if (err == 0) made = dst;
      else if (err == EEXIST && (step = WRITE_STEP_OPEN_TMP, err = batch_path(buf, r, tmp)) == 0) {
        // Something holds the name (O_EXCL never follows or replaces it): the careful way, renamed over it below.
        err = WRITE_CALL(fd = (int)syscall(SYS_openat, AT_FDCWD, tmp, open_flags, (mode_t)r[6]));
        if (err == 0) made = tmp;
      }
    }
    // Only a hint (btrfs: see file-writers.ts): whatever it returns, the write says what fails.
    if (err == 0 && flushOnClose && r[5] > 0) (void)WRITE_CALL(syscall(SYS_ftruncate, fd, (off_t)0));
    size_t at = 0, len = (size_t)r[5];
    if (err == 0) step = WRITE_STEP_WRITE;
    while (err == 0 && at < len) {
      ssize_t w = pwrite(fd, buf + (size_t)r[4] + at, len - at, (off_t)at);
      if (w > 0) at += (size_t)w;
      else if (w == 0) err = EIO;
      else if (errno != EINTR) err = errno;
    }
    if (err == 0 && r[12] >= 0 && (err = WRITE_CALL(syscall(SYS_ftruncate, fd, (off_t)r[12]))) != 0) step = WRITE_STEP_FTRUNCATE;
    if (err == 0 && r[8] >= 0 && (err = WRITE_CALL(syscall(SYS_fchown, fd, (uid_t)r[8], r[9] >= 0 ? (gid_t)r[9] : (gid_t)-1))) != 0) step = WRITE_STEP_FCHOWN;
    if (err == 0 && r[7] >= 0 && (err = WRITE_CALL(syscall(SYS_fchmod, fd, (mode_t)r[7]))) != 0) step = WRITE_STEP_FCHMOD;
    if (err == 0) {
      // To the microsecond, as node:fs (libuv) sets a time given in seconds.
      struct timespec ts[2];
      ts[0].tv_sec = (time_t)r[10];
      ts[0].tv_nsec = (long)r[11] - (long)r[11] % 1000;
      ts[1] = ts[0];
      if ((err = WRITE_CALL(syscall(SYS_utimensat, fd, NULL, ts, 0))) != 0) step = WRITE_STEP_FUTIME;
    }
    if (err == 0) {
      int c = fd;
      fd = -1;
      // Interrupted or in progress: the fd is gone all the same (libuv counts both as done).
      if (close(c) != 0 && errno != EINTR && errno != EINPROGRESS) err = errno, step = WRITE_STEP_CLOSE;
    }
    if (err == 0 && made == tmp && (err = WRITE_CALL(renameat(AT_FDCWD, tmp, AT_FDCWD, dst))) != 0) step = WRITE_STEP_RENAME;
    if (err == 0) continue;
    if (fd >= 0) close(fd);
    // Created by this call (O_EXCL), so nothing else is removed: no partial file stays, under either name.
    if (made != NULL) (void)syscall(SYS_unlinkat, AT_FDCWD, made, 0);
    break;
  }
  free(f);
  out[0] = (double)i;
  out[1] = err == 0 ? -1 : (double)i;
  out[2] = (double)err;
  out[3] = err == 0 ? 0 : (double)step;
  return result;
}

// lz4Compress(src: Uint8Array, dst: Uint8Array) → bytes written: `u32 LE size | LZ4 block` of src
// lz4Decompress(src: Uint8Array, dst: Uint8Array) → bytes decoded from `u32 LE size | LZ4 block`
// The LZ4 block format through the system's liblz4 (liblz4.so.1, >= 1.7,
// loaded with uv_dlopen: no link-time dependency, so the module loads on a
// host without it, and then has neither function; the caller uses its
// WebAssembly codec). The same layout on the wire as ferry's other codecs
// (lz4_flex's compress_prepend_size; each decodes the others' well-formed
// blocks). Compression throws a RangeError unless dst holds the worst case
// (LZ4_compressBound): liblz4 then never takes its limited-output path,
// whose bound check was wrong for long matches before 1.9.2
// (CVE-2019-17543). Decompression decodes into dst only as far as the prefix
// says, which must fit dst, and throws FERRY_CHUNK_CORRUPT for a block that
// does not decode to exactly that many bytes (LZ4_decompress_safe never
// reads or writes outside the buffers, whatever the input); its message is
// what is wrong, without "corrupt" (the caller words that).
//
// Why (issue 14, 2026-12-07): the WebAssembly codec copies each frame into
// and out of its memory; on 1 MiB frames of a tar of /usr it compressed at
// 720-790 MB/s (325 MB/s before V8 optimised it) and decoded at 2.2-2.6 GB/s,
// against liblz4's 1,245 MB/s and 6.5 GB/s (`lz4 -b1`) on this VM.
typedef int (*lz4_compress_fn)(const char *src, char *dst, int srcSize, int dstCapacity, int acceleration);
typedef int (*lz4_decompress_fn)(const char *src, char *dst, int compressedSize, int dstCapacity);
typedef int (*lz4_version_fn)(void);
static lz4_compress_fn lz4_compress;
static lz4_decompress_fn lz4_decompress;
static uv_once_t lz4_once = UV_ONCE_INIT;

// Through libuv's dlopen and once (exported by node, as its error texts are): glibc's own dlopen and
// pthread_once carry the symbol version 2.34 when built on a newer system, which older hosts lack.
static void lz4_load(void) {
  static uv_lib_t lib;
  union {
    void *p;
    lz4_version_fn version;
    lz4_compress_fn compress;
    lz4_decompress_fn decompress;
  } v, c, d;
  if (uv_dlopen("liblz4.so.1", &lib) != 0) {
    uv_dlclose(&lib);  // (frees the error text uv_dlopen kept)
    return;
  }
  if (uv_dlsym(&lib, "LZ4_versionNumber", &v.p) != 0 || uv_dlsym(&lib, "LZ4_compress_fast", &c.p) != 0 ||
      uv_dlsym(&lib, "LZ4_decompress_safe", &d.p) != 0 || v.version() < 10700) {
    uv_dlclose(&lib);
    return;
  }
  lz4_compress = c.compress;
  lz4_decompress = d.decompress;
}

// The bytes of a Uint8Array (or Buffer) argument; false when it is not one.
static bool bytes_of(napi_env env, napi_value v, unsigned char **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  return napi_is_typedarray(env, v, &is) == napi_ok && is &&
         napi_get_typedarray_info(env, v, &type, len, (void **)data, &ab, &offset) == napi_ok && type == napi_uint8_array;
}

static napi_value lz4_call(napi_env env, napi_callback_info info, bool compress) {
  size_t argc = 2;
  napi_value argv[2], out;
  unsigned char *src, *dst;
  size_t srcLen, dstLen;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !bytes_of(env, argv[0], &src, &srcLen) ||
      !bytes_of(env, argv[1], &dst, &dstLen)) {
    napi_throw_type_error(env, NULL, compress ? "lz4Compress(src: Uint8Array, dst: Uint8Array)" : "lz4Decompress(src: Uint8Array, dst: Uint8Array)");
    return NULL;
  }
  int n;
  if (compress) {
    if (srcLen > 0x7E000000u) {  // LZ4_MAX_INPUT_SIZE
      napi_throw_range_error(env, NULL, "lz4Compress: the input is larger than LZ4 takes");
      return NULL;
    }
    if (dstLen < 4 || dstLen - 4 < srcLen + srcLen / 255 + 16) {  // LZ4_compressBound
      napi_throw_range_error(env, NULL, "lz4Compress: the output buffer cannot hold the worst case");
      return NULL;
    }
    n = srcLen == 0 ? 0 : lz4_compress((const char *)src, (char *)dst + 4, (int)srcLen, (int)(dstLen - 4 > 0x7FFFFFFFu ? 0x7FFFFFFFu : dstLen - 4), 1);
    if (srcLen > 0 && n <= 0) {
      napi_throw_error(env, "FERRY_NATIVE_FAILED", "lz4Compress: liblz4 gave no block");
      return NULL;
    }
    uint32_t size = (uint32_t)srcLen;
    dst[0] = size & 0xff;
    dst[1] = (size >> 8) & 0xff;
    dst[2] = (size >> 16) & 0xff;
    dst[3] = size >> 24;
    n += 4;
    // An empty input is its prefix and one empty-literal token, as lz4_flex writes it.
    if (srcLen == 0) dst[n++] = 0;
  } else {
    uint32_t size = srcLen < 4 ? 0 : (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 | (uint32_t)src[3] << 24;
    if (srcLen < 5 || srcLen - 4 > 0x7FFFFFFFu || size > dstLen || size > 0x7FFFFFFFu) {
      napi_throw_error(env, "FERRY_CHUNK_CORRUPT", "too short, or its size prefix does not fit the output");
      return NULL;
    }
    n = lz4_decompress((const char *)src + 4, (char *)dst, (int)(srcLen - 4), (int)size);
    if (n < 0 || (uint32_t)n != size) {
      napi_throw_error(env, "FERRY_CHUNK_CORRUPT", "it does not decode to its size prefix");
      return NULL;
    }
  }
  napi_create_int32(env, n, &out);
  return out;
}

static napi_value lz4Compress(napi_env env, napi_callback_info info) { return lz4_call(env, info, true); }
static napi_value lz4Decompress(napi_env env, napi_callback_info info) { return lz4_call(env, info, false); }

#ifdef FERRY_XXHASH
// readHashed(fd: number, buffer: Uint8Array, position: number, chunkSize: number, hashes: Uint8Array)
//   → Promise<bytes read>
// Reads buffer.length bytes of fd from position (fewer only at the end of the file; a sparse file's holes
// zero-filled without being read: read_range), then writes each
// chunkSize chunk's canonical hash into hashes, u64 big-endian, chunk after chunk: 0 for an all-zero chunk,
// otherwise xxh64 (seed 0) with 0 and 1 moved to 2 and 3 (protocol/chunk-hash.ts; the receiver computes the
// same). All on one of libuv's pool threads, which write into both buffers as node:fs's read does into its
// buffer: they must stay in place (not transferred) until the promise settles; they are kept alive until then.
// A failed read rejects with an error like node:fs's (code, errno, syscall 'read').
//
// Why (issue 14, 2026-12-07): a block pass hashed on its main thread in WebAssembly, 93-115 ms per GiB of
// non-zero data (the bytes copied into wasm memory first), serialised with everything else the main thread
// does; here the hashing of one read runs beside the next read, on the other core. Holes: a full pass of a
// 20 GiB sparse image with 160 MiB of data took 42.4 s (39 s of it the kernel zero-filling reads), 3.1 s now.
struct hash_job {
  int fd;
  unsigned char *data;
  size_t len;
  int64_t position;
  size_t chunk;
  unsigned char *hashes;
  size_t got;
  int err;
  napi_ref buffer, hashesRef;
  napi_async_work work;
  napi_deferred deferred;
  // scanSame only (scan != 0): the stretch's first byte (expected[0] is its first chunk), the step from one
  // read to the next, the stretch's end; the offset of the read that stopped the scan (or end).
  int scan;
  int64_t base, step, end, at;
  const unsigned char *expected;
  napi_ref expectedRef;
  // Shared by the jobs of one stretch (and the caller, to stop them): no read at or past it is started, and a job
  // that stops lowers it to its read, so the other does not read on past the change.
  int64_t *limit;
  napi_ref limitRef;
};

static int all_zero(const unsigned char *p, size_t n) {
  // The bytes equal their neighbours and the first is 0 (memcmp is the C library's vectorised one).
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

// Reads [position, position + len) into data, fewer bytes only at the end of the file; 0 or an errno. The holes
// of a sparse file (an image) are not read but zero-filled: SEEK_DATA and SEEK_HOLE say where its data is (on
// a block device, or where the file system does not know, everything is data and is read).
static int read_range(int fd, unsigned char *data, size_t len, int64_t position, size_t *got_out) {
  size_t got = 0;
  while (got < len) {
    off_t at = (off_t)(position + (int64_t)got);
    size_t want = len - got;
    off_t from = lseek(fd, at, SEEK_DATA);
    if (from < 0 && errno == ENXIO) {
      // No data from here on: zeros to the end of the file.
      struct stat st;
      if (syscall(SYS_fstat, fd, &st) != 0) return errno;
      size_t rest = st.st_size > at ? ((uint64_t)(st.st_size - at) < want ? (size_t)(st.st_size - at) : want) : 0;
      memset(data + got, 0, rest);
      got += rest;
      break;
    }
    if (from > at) {
      size_t hole = (uint64_t)(from - at) < want ? (size_t)(from - at) : want;
      memset(data + got, 0, hole);
      got += hole;
      continue;
    }
    if (from == at) {
      off_t to = lseek(fd, at, SEEK_HOLE);
      if (to > at && (uint64_t)(to - at) < want) want = (size_t)(to - at);
    }
    ssize_t n = pread(fd, data + got, want, at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  *got_out = got;
  return 0;
}

// Writes the canonical hash of each chunk of data[0, got) into out (u64 BE each); with `expected` (u64 BE, one
// per chunk, in the same order), whether every hash equals its expected entry.
static int hash_chunks(const unsigned char *data, size_t got, size_t chunk, unsigned char *out, const unsigned char *expected) {
  int same = 1;
  for (size_t at = 0; at < got; at += chunk, out += 8) {
    size_t n = got - at < chunk ? got - at : chunk;
    uint64_t h = 0;
    if (!all_zero(data + at, n)) {
      h = XXH64(data + at, n, 0);
      if (h < 2) h += 2;
    }
    for (int b = 7; b >= 0; b--, h >>= 8) out[b] = (unsigned char)(h & 0xff);
    if (expected != NULL && same) {
      same = memcmp(out, expected, 8) == 0;
      expected += 8;
    }
  }
  return same;
}

static void hash_execute(napi_env env, void *data) {
  (void)env;
  struct hash_job *job = data;
  size_t got = 0;
  if (!job->scan) {
    job->err = read_range(job->fd, job->data, job->len, job->position, &got);
    if (job->err != 0) return;
    job->got = got;
    hash_chunks(job->data, got, job->chunk, job->hashes, NULL);
    return;
  }
  // scanSame: read after read until one differs from the receiver's entries or is short; that read's bytes and
  // hashes stay in the buffers.
  for (int64_t at = job->position; at < job->end; at += job->step) {
    if (at >= __atomic_load_n(job->limit, __ATOMIC_ACQUIRE)) {
      // The other job stopped before this read (or the caller stopped both): this one is not read.
      job->at = at;
      job->got = 0;
      return;
    }
    size_t n = (uint64_t)(job->end - at) < job->len ? (size_t)(job->end - at) : job->len;
    job->err = read_range(job->fd, job->data, n, at, &got);
    if (job->err != 0) {
      // The other job need not read on: the stretch fails.
      __atomic_store_n(job->limit, 0, __ATOMIC_RELEASE);
      return;
    }
    const unsigned char *expected = job->expected + (size_t)((at - job->base) / (int64_t)job->chunk) * 8;
    if (!hash_chunks(job->data, got, job->chunk, job->hashes, expected) || got < n) {
      job->at = at;
      job->got = got;
      int64_t cur = __atomic_load_n(job->limit, __ATOMIC_ACQUIRE);
      while (cur > at && !__atomic_compare_exchange_n(job->limit, &cur, at, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      }
      return;
    }
  }
  job->at = job->end;
  job->got = 0;
}

static void hash_complete(napi_env env, napi_status status, void *data) {
  struct hash_job *job = data;
  napi_value v, at, got;
  if (status == napi_ok && job->err == 0 && job->scan && napi_create_object(env, &v) == napi_ok && napi_create_double(env, (double)job->at, &at) == napi_ok &&
      napi_create_double(env, (double)job->got, &got) == napi_ok && napi_set_named_property(env, v, "at", at) == napi_ok && napi_set_named_property(env, v, "got", got) == napi_ok) {
    napi_resolve_deferred(env, job->deferred, v);
  } else if (status == napi_ok && job->err == 0 && !job->scan && napi_create_double(env, (double)job->got, &v) == napi_ok) {
    napi_resolve_deferred(env, job->deferred, v);
  } else {
    int e = job->err != 0 ? job->err : EIO;
    char msg[200];
    snprintf(msg, sizeof msg, "%s: %s, read", uv_err_name(-e), uv_strerror(-e));
    napi_value m, c, err = NULL, no, sc;
    if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) == napi_ok &&
        napi_create_string_utf8(env, uv_err_name(-e), NAPI_AUTO_LENGTH, &c) == napi_ok && napi_create_error(env, c, m, &err) == napi_ok) {
      if (napi_create_int32(env, -e, &no) == napi_ok) napi_set_named_property(env, err, "errno", no);
      if (napi_create_string_utf8(env, "read", NAPI_AUTO_LENGTH, &sc) == napi_ok) napi_set_named_property(env, err, "syscall", sc);
    } else {
      err = plain_error(env, "ferry-fs: readHashed failed");
    }
    napi_reject_deferred(env, job->deferred, err);
  }
  napi_delete_reference(env, job->buffer);
  napi_delete_reference(env, job->hashesRef);
  if (job->expectedRef != NULL) napi_delete_reference(env, job->expectedRef);
  if (job->limitRef != NULL) napi_delete_reference(env, job->limitRef);
  napi_delete_async_work(env, job->work);
  free(job);
}

// Undoes what hash_call made of a job that does not run.
static void hash_job_drop(napi_env env, struct hash_job *job) {
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  if (job->buffer != NULL) napi_delete_reference(env, job->buffer);
  if (job->hashesRef != NULL) napi_delete_reference(env, job->hashesRef);
  if (job->expectedRef != NULL) napi_delete_reference(env, job->expectedRef);
  if (job->limitRef != NULL) napi_delete_reference(env, job->limitRef);
  free(job);
}

// A BigInt64Array's first element (its memory is 8-byte aligned, as a typed array of int64 must be).
static bool int64_cell_of(napi_env env, napi_value v, unsigned char **data, size_t *bytes) {
  bool is = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset, count;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is || napi_get_typedarray_info(env, v, &type, &count, (void **)data, &ab, &offset) != napi_ok ||
      type != napi_bigint64_array)
    return false;
  *bytes = count * 8;
  return true;
}

// readHashed (scan 0) and scanSame (scan 1): the arguments checked, the buffers kept alive, the job queued.
static napi_value hash_call(napi_env env, napi_callback_info info, int scan) {
  const char *fn = scan ? "scanSame" : "readHashed";
  size_t argc = 10;
  napi_value argv[10], promise, name;
  double fd = -1, position = -1, chunk = 0, base = -1, step = 0, end = -1;
  unsigned char *buf, *hashes, *expected = NULL, *limit = NULL;
  size_t len, hashesLen, expectedLen = 0, limitLen = 0;
  char msg[360];
  size_t want = scan ? 10 : 5;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want || napi_get_value_double(env, argv[0], &fd) != napi_ok ||
      !bytes_of(env, argv[1], &buf, &len) || napi_get_value_double(env, argv[2], &position) != napi_ok ||
      napi_get_value_double(env, argv[3], &chunk) != napi_ok || !bytes_of(env, argv[4], &hashes, &hashesLen) ||
      (scan && (napi_get_value_double(env, argv[5], &base) != napi_ok || napi_get_value_double(env, argv[6], &step) != napi_ok ||
                napi_get_value_double(env, argv[7], &end) != napi_ok || !bytes_of(env, argv[8], &expected, &expectedLen) || !int64_cell_of(env, argv[9], &limit, &limitLen)))) {
    snprintf(msg, sizeof msg, "%s(fd: number, buffer: Uint8Array, position: number, chunkSize: number, hashes: Uint8Array%s)", fn,
             scan ? ", base: number, step: number, end: number, expected: Uint8Array, limit: BigInt64Array" : "");
    napi_throw_type_error(env, NULL, msg);
    return NULL;
  }
  // fd a whole number from 0 to INT_MAX, positions whole numbers below 2^53, chunkSize whole and at least 1,
  // and room for every chunk's hash. A scan: base <= position < end, position and the step (at least the
  // buffer) at whole chunks from base, and an expected entry for every chunk from base to end.
  int ok = whole(fd, 0, 2147483647.0) && whole(position, 0, 9007199254740991.0) && whole(chunk, 1, 1073741824.0) && len > 0 &&
           hashesLen / 8 >= (len + (size_t)chunk - 1) / (size_t)chunk;
  if (ok && scan) {
    ok = whole(base, 0, position) && whole(end, position + 1, 9007199254740991.0) && whole(step, (double)len, 9007199254740991.0) &&
         (int64_t)(position - base) % (int64_t)chunk == 0 && (int64_t)step % (int64_t)chunk == 0 &&
         expectedLen / 8 >= (uint64_t)((int64_t)(end - base) + (int64_t)chunk - 1) / (uint64_t)chunk && limitLen >= 8 && (uintptr_t)limit % 8 == 0;
  }
  if (!ok) {
    snprintf(msg, sizeof msg, "%s: an fd, a non-empty buffer, a whole position, a chunk size of 1 byte to 1 GiB, and 8 bytes of hashes per chunk%s", fn,
             scan ? "; base <= position < end, position and step (at least the buffer) whole chunks from base, 8 bytes of expected per chunk from base to end, an aligned 8-byte limit" : "");
    napi_throw_range_error(env, NULL, msg);
    return NULL;
  }
  struct hash_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "FERRY_NATIVE_NOMEM", "ferry-fs: no memory for a read");
    return NULL;
  }
  job->fd = (int)fd;
  job->data = buf;
  job->len = len;
  job->position = (int64_t)position;
  job->chunk = (size_t)chunk;
  job->hashes = hashes;
  job->scan = scan;
  job->base = (int64_t)base;
  job->step = (int64_t)step;
  job->end = (int64_t)end;
  job->expected = expected;
  job->limit = (int64_t *)(void *)limit;
  snprintf(msg, sizeof msg, "ferry-fs: %s could not start", fn);
  if (napi_create_reference(env, argv[1], 1, &job->buffer) != napi_ok || napi_create_reference(env, argv[4], 1, &job->hashesRef) != napi_ok ||
      (scan && napi_create_reference(env, argv[8], 1, &job->expectedRef) != napi_ok) ||
      (scan && napi_create_reference(env, argv[9], 1, &job->limitRef) != napi_ok) ||
      napi_create_string_utf8(env, scan ? "ferry-fs scanSame" : "ferry-fs readHashed", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, hash_execute, hash_complete, job, &job->work) != napi_ok) {
    hash_job_drop(env, job);
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    hash_job_drop(env, job);
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_reject_deferred(env, job->deferred, plain_error(env, msg));
    hash_job_drop(env, job);
  }
  return promise;
}

static napi_value readHashed(napi_env env, napi_callback_info info) { return hash_call(env, info, 0); }

// scanSame(fd, buffer, position, chunkSize, hashes, base, step, end, expected, limit) → Promise<{ at, got }>
// Reads at position, position + step, … (each buffer.length bytes, fewer at end) while below end, hashing each
// read's chunks as readHashed does and comparing them with `expected` (the receiver's entries, u64 BE, one per
// chunk from base). Stops at the first read with a chunk that differs, or that is short (the file ended): `at`
// is its offset and `got` its bytes read, its bytes in buffer and its hashes in hashes; it then lowers `limit[0]`
// (an int64 the jobs of one stretch share) to `at`. A read at or past `limit[0]` is not started: the job stops
// there with `got` 0 (the caller stops every job by setting it to 0). When every read matched, `at` is end and
// `got` 0. The buffers, expected and limit stay in place (not transferred) until it settles.
//
// Why (issue 14, 2026-12-07, s36): a resident agent's warm no-change pass over 1 GiB spent 0.8-0.9 ms on each of
// its 256 readHashed calls against 0.55 ms of work: the hand-off to libuv's pool and back, two thread wake-ups,
// each a trap to the hypervisor on this VM. A scan of a stretch that has not changed costs one hand-off for
// sixteen reads.
static napi_value scanSame(napi_env env, napi_callback_info info) { return hash_call(env, info, 1); }

// xxh64(data: Uint8Array) → bigint: xxh64 (seed 0) of the bytes, on the calling thread.
// xxh64Update(state: Uint8Array, data: Uint8Array): a running xxh64 (seed 0) over everything given, its
// state in the caller's `state` (xxh64StateBytes bytes, 8-aligned, zero-filled before the first update: a
// state never updated is reset then); xxh64Digest(state) → bigint, the hash so far (the state goes on).
// The same values as xxhash-wasm's h64Raw and create64 (protocol/xxhash.ts, which picks one or the other).
//
// Why (issue 14, /usr full copy): each side hashes every byte of a file stream twice, once per frame and
// once for the stream's digest, and WebAssembly needs the bytes copied into its memory first for each:
// about 0.15-0.2 s of each main thread in a 4-5 s pass. Here the bytes are hashed where they are.
static bool xxh64_bytes(napi_env env, napi_value v, unsigned char **data, size_t *len) {
  if (bytes_of(env, v, data, len)) return true;
  napi_throw_type_error(env, NULL, "xxh64: data must be a Uint8Array");
  return false;
}

// The state's bytes as an XXH64_state_t: a Uint8Array of exactly its size, 8-aligned (NULL: a TypeError thrown).
// Its first byte past the state proper says whether it was reset (XXH64_reset on first use): the caller only zero-fills.
#define XXH64_STATE_BYTES (sizeof(XXH64_state_t) + 8)
static XXH64_state_t *xxh64_state(napi_env env, napi_value v) {
  unsigned char *p;
  size_t n;
  if (!bytes_of(env, v, &p, &n) || n != XXH64_STATE_BYTES || ((uintptr_t)p & 7) != 0) {
    napi_throw_type_error(env, NULL, "xxh64: state must be an 8-aligned Uint8Array of xxh64StateBytes bytes");
    return NULL;
  }
  if (p[sizeof(XXH64_state_t)] == 0) {
    XXH64_reset((XXH64_state_t *)p, 0);
    p[sizeof(XXH64_state_t)] = 1;
  }
  // XXH64_update trusts the count of bytes it holds back (fewer than 32): a state written to from JS could
  // make it copy past the state. Refused instead.
  if (((XXH64_state_t *)p)->memsize >= 32) {
    napi_throw_type_error(env, NULL, "xxh64: the state was changed outside xxh64Update");
    return NULL;
  }
  return (XXH64_state_t *)p;
}

static napi_value xxh64_result(napi_env env, uint64_t h) {
  napi_value r;
  if (napi_create_bigint_uint64(env, h, &r) != napi_ok) return NULL;
  return r;
}

static napi_value xxh64(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1];
  unsigned char *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "xxh64(data: Uint8Array)");
    return NULL;
  }
  if (!xxh64_bytes(env, argv[0], &data, &len)) return NULL;
  return xxh64_result(env, XXH64(data, len, 0));
}

static napi_value xxh64Update(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value argv[2];
  unsigned char *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "xxh64Update(state: Uint8Array, data: Uint8Array)");
    return NULL;
  }
  XXH64_state_t *st = xxh64_state(env, argv[0]);
  if (st == NULL || !xxh64_bytes(env, argv[1], &data, &len)) return NULL;
  XXH64_update(st, data, len);
  return NULL;
}

static napi_value xxh64Digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "xxh64Digest(state: Uint8Array)");
    return NULL;
  }
  XXH64_state_t *st = xxh64_state(env, argv[0]);
  return st == NULL ? NULL : xxh64_result(env, XXH64_digest(st));
}
#endif

// Sets exports[name] to the function fn, or to the number value (fn NULL); false if Node-API fails.
static bool export_one(napi_env env, napi_value exports, const char *name, napi_callback fn, uint32_t value) {
  napi_value v;
  napi_status made = fn != NULL ? napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &v) : napi_create_uint32(env, value, &v);
  return made == napi_ok && napi_set_named_property(env, exports, name, v) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!export_one(env, exports, "listdir", listdir, 0) || !export_one(env, exports, "readFiles", readFiles, 0) ||
      !export_one(env, exports, "xattrs", xattrs, 0) || !export_one(env, exports, "openDirBeneath", openDirBeneath, 0) ||
      !export_one(env, exports, "closeFd", closeFd, 0) || !export_one(env, exports, "writeFiles", writeFiles, 0) ||
      // The fields a file takes in writeFiles: the caller uses writeFiles only from a module that takes as many as it writes.
      !export_one(env, exports, "writeFilesFields", NULL, WRITE_FIELDS))
    return NULL;
#ifdef FERRY_XXHASH
  if (!export_one(env, exports, "readHashed", readHashed, 0) || !export_one(env, exports, "scanSame", scanSame, 0) ||
      !export_one(env, exports, "xxh64", xxh64, 0) || !export_one(env, exports, "xxh64Update", xxh64Update, 0) ||
      !export_one(env, exports, "xxh64Digest", xxh64Digest, 0) || !export_one(env, exports, "xxh64StateBytes", NULL, (uint32_t)XXH64_STATE_BYTES))
    return NULL;
#endif
  uv_once(&lz4_once, lz4_load);
  if (lz4_compress != NULL && (!export_one(env, exports, "lz4Compress", lz4Compress, 0) || !export_one(env, exports, "lz4Decompress", lz4Decompress, 0)))
    return NULL;
  return exports;
}
