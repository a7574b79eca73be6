// The floor under a block pass that reads every byte, without node: T threads take 4 MiB reads of an image in
// turn and, per mode, only read them (pread), read and hash each 32 KiB chunk as readHashed does (all-zero check,
// then xxh64), or hash it from a mapping instead of a read (mmap). Prints the wall ms of 5 rounds (page cache as it
// is: read the image once first for warm figures). Not part of `npm run bench` (docs/replication.md, s36):
//   gcc -O2 -o /tmp/block-floor test/bench/block-floor.c -lpthread    (xxhash.h from libxxhash-dev)
//   flock /tmp/ferry-heavy.lock /tmp/block-floor IMAGE pread|hash|mmap THREADS
#define _GNU_SOURCE
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_BYTES (4 << 20)
#define CHUNK (32 << 10)

enum mode { READ_ONLY, READ_HASH, MAP_HASH };
static int fd;
static off_t size;
static enum mode mode;
static off_t next_read;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long sink;

static off_t take(void) {
  pthread_mutex_lock(&lock);
  off_t at = next_read;
  next_read += READ_BYTES;
  pthread_mutex_unlock(&lock);
  return at;
}

static int all_zero(const unsigned char *p, size_t n) { return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0; }

static void *work(void *arg) {
  (void)arg;
  unsigned char *buf = aligned_alloc(4096, READ_BYTES);
  unsigned long long h = 0;
  if (buf == NULL) return NULL;
  for (;;) {
    off_t at = take();
    if (at >= size) break;
    size_t n = size - at < READ_BYTES ? (size_t)(size - at) : READ_BYTES;
    const unsigned char *p = buf;
    void *map = NULL;
    if (mode == MAP_HASH) {
      map = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, at);
      if (map == MAP_FAILED) {
        perror("mmap");
        exit(1);
      }
      p = map;
    } else if (pread(fd, buf, n, at) != (ssize_t)n) {
      perror("pread");
      exit(1);
    }
    if (mode != READ_ONLY) {
      for (size_t o = 0; o + CHUNK <= n; o += CHUNK) {
        if (!all_zero(p + o, CHUNK)) h ^= XXH64(p + o, CHUNK, 0);
      }
    }
    if (map != NULL) munmap(map, n);
  }
  __sync_fetch_and_xor(&sink, h);
  free(buf);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: block-floor IMAGE pread|hash|mmap THREADS\n");
    return 2;
  }
  fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  size = lseek(fd, 0, SEEK_END);
  mode = strcmp(argv[2], "pread") == 0 ? READ_ONLY : strcmp(argv[2], "hash") == 0 ? READ_HASH : MAP_HASH;
  int threads = atoi(argv[3]);
  if (threads < 1 || threads > 16) threads = 2;
  printf("%s %s, %d thread(s):", argv[1], argv[2], threads);
  for (int round = 0; round < 5; round++) {
    struct timespec t0, t1;
    pthread_t t[16];
    next_read = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf(" %.0f", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
  }
  printf(" ms\n");
  return 0;
}
