// A model of a live daemon's checkpoints in SQLite alone: statements one row at a time
// against batches of rows (`SQLiteStateStore.stepInBatches`), timed by phase.
//
//   cc -O2 Benchmarks/checkpoint_model.c -lsqlite3 -o /tmp/checkpoint_model
//   /tmp/checkpoint_model one        # a statement per row
//   /tmp/checkpoint_model batch 64   # 64 rows a statement where 64 are left
//
// The schema is feedbackd's (`SQLiteStateStore.migrate`, the tables a checkpoint writes). Each
// simulated second, as `live_latency.py --rate 10000` makes the daemon do: 5,000 predictions
// are inserted (`predictions`, then their keys' hashes in hash order in `prediction_keys`);
// from the 11th second on, the 5,000 of ten seconds before go (deleted by seq, their key rows
// one by one in hash order; no batched form of that pair lookup helps) and their keys become
// finished keys until two windows after their prediction; expired finished keys are deleted
// by time; then the transaction commits. 60 seconds are simulated; the CPU time of each
// phase and in all is printed. The database is a fresh file in /tmp (WAL, synchronous=NORMAL:
// commits are not fsynced; the CPU is what this measures).
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { PER_SECOND = 5000, SECONDS = 60, WINDOW = 10 };
static const char *path = "/tmp/feedbackd-checkpoint-model.sqlite";
static sqlite3 *db;
static int batch = 1;

static void exec(const char *sql) {
  char *error = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", sql, error);
    exit(1);
  }
}

static sqlite3_stmt *prepare(const char *sql) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    exit(1);
  }
  return s;
}

static void run(sqlite3_stmt *s) {
  int code;
  while ((code = sqlite3_step(s)) == SQLITE_ROW) {}
  if (code != SQLITE_DONE) {
    fprintf(stderr, "step: %s\n", sqlite3_errmsg(db));
    exit(1);
  }
  sqlite3_reset(s);
}

// head + n copies of item joined by ", " + tail.
static char *repeat(const char *head, const char *item, int n, const char *tail) {
  size_t size = strlen(head) + (size_t)n * (strlen(item) + 2) + strlen(tail) + 1;
  char *sql = malloc(size);
  strcpy(sql, head);
  for (int i = 0; i < n; i++) {
    if (i > 0) strcat(sql, ", ");
    strcat(sql, item);
  }
  strcat(sql, tail);
  return sql;
}

// A statement for one row and one for `batch` rows.
typedef struct {
  sqlite3_stmt *one, *many;
  int parameters;
} Batched;

static Batched upsert(const char *table, const char *row, int parameters) {
  char head[128];
  snprintf(head, sizeof head, "INSERT OR REPLACE INTO %s VALUES ", table);
  char *one = repeat(head, row, 1, ""), *many = repeat(head, row, batch, "");
  Batched b = {prepare(one), prepare(many), parameters};
  free(one);
  free(many);
  return b;
}

static Batched delete_by(const char *table, const char *column) {
  char one[128], head[128];
  snprintf(one, sizeof one, "DELETE FROM %s WHERE %s = ?", table, column);
  snprintf(head, sizeof head, "DELETE FROM %s WHERE %s IN (", table, column);
  char *many = repeat(head, "?", batch, ")");
  Batched b = {prepare(one), prepare(many), 1};
  free(many);
  return b;
}

typedef void (*Bind)(sqlite3_stmt *, int first, long row);

// Rows first..<first+count, `batch` at a time while that many are left, then one by one.
static void step_rows(Batched *b, long first, long count, Bind bind) {
  long i = 0;
  if (batch > 1)
    for (; count - i >= batch; i += batch) {
      for (int r = 0; r < batch; r++) bind(b->many, r * b->parameters + 1, first + i + r);
      run(b->many);
    }
  for (; i < count; i++) {
    bind(b->one, 1, first + i);
    run(b->one);
  }
}

static unsigned key_hash(long seq) { return (unsigned)((unsigned long)seq * 0x9E3779B97F4A7C15UL >> 33) & 0x7fffffff; }

typedef struct {
  long hash, seq;
} KeyRow;
static KeyRow *keys;  // the current second's key rows, in hash order
static int by_hash(const void *a, const void *b) {
  const KeyRow *x = a, *y = b;
  return x->hash != y->hash ? (x->hash < y->hash ? -1 : 1) : (x->seq < y->seq ? -1 : x->seq > y->seq);
}
static void sort_keys(long first) {
  for (long i = 0; i < PER_SECOND; i++) keys[i] = (KeyRow){key_hash(first + i), first + i};
  qsort(keys, PER_SECOND, sizeof *keys, by_hash);
}

static long key_base;  // the seq of keys[0]'s second, for binding by row number
static char payload[60];

static void bind_prediction(sqlite3_stmt *s, int at, long seq) {
  char key[32];
  snprintf(key, sizeof key, "r-%ld", seq);
  sqlite3_bind_int64(s, at, seq);
  sqlite3_bind_text(s, at + 1, key, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, at + 2, seq * 1000);
  sqlite3_bind_blob(s, at + 3, payload, sizeof payload, SQLITE_STATIC);
  sqlite3_bind_int64(s, at + 4, 1);
  sqlite3_bind_int64(s, at + 5, 1);
}
static void bind_key(sqlite3_stmt *s, int at, long row) {
  sqlite3_bind_int64(s, at, keys[row - key_base].hash);
  sqlite3_bind_int64(s, at + 1, keys[row - key_base].seq);
}
static void bind_seq(sqlite3_stmt *s, int at, long seq) { sqlite3_bind_int64(s, at, seq); }
static void bind_finished(sqlite3_stmt *s, int at, long seq) {
  char key[32];
  snprintf(key, sizeof key, "r-%ld", seq);
  sqlite3_bind_text(s, at, key, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, at + 1, seq * 1000);
  sqlite3_bind_int64(s, at + 2, seq * 1000 + 2L * WINDOW * PER_SECOND * 1000);
}

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "one") != 0 && strcmp(argv[1], "batch") != 0)) {
    fprintf(stderr, "usage: %s one | batch [ROWS]\n", argv[0]);
    return 2;
  }
  if (strcmp(argv[1], "batch") == 0) batch = argc > 2 ? atoi(argv[2]) : 64;
  if (batch < 1) batch = 1;
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    char file[256];
    snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
    unlink(file);
  }
  sqlite3_open(path, &db);
  exec(
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
    "CREATE TABLE predictions (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, time INTEGER NOT NULL,"
    "  payload BLOB NOT NULL, datasets INTEGER NOT NULL, pending INTEGER NOT NULL);"
    "CREATE INDEX predictions_by_time ON predictions (time, seq);"
    "CREATE TABLE prediction_keys (hash INTEGER NOT NULL, seq INTEGER NOT NULL,"
    "  PRIMARY KEY (hash, seq)) WITHOUT ROWID;"
    "CREATE TABLE finished (key TEXT PRIMARY KEY, time INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;");
  Batched insert_prediction = upsert("predictions", "(?, ?, ?, ?, ?, ?)", 6);
  Batched insert_key = upsert("prediction_keys", "(?, ?)", 2);
  Batched delete_prediction = delete_by("predictions", "seq");
  Batched insert_finished = upsert("finished", "(?, ?, ?)", 3);
  // One by one whatever the batch: the key rows to delete are pairs.
  Batched delete_key = {prepare("DELETE FROM prediction_keys WHERE hash = ? AND seq = ?"), NULL, 2};
  sqlite3_stmt *prune = prepare("DELETE FROM finished WHERE expires_at <= ?");
  keys = malloc(sizeof *keys * PER_SECOND);

  const char *phases[] = {"insert predictions", "insert keys", "delete predictions", "delete keys",
                          "insert finished", "prune finished", "commit"};
  double spent[7] = {0}, start = cpu_now(), mark = start;
#define PHASE(i) \
  do { \
    double now = cpu_now(); \
    spent[i] += now - mark; \
    mark = now; \
  } while (0)
  exec("BEGIN");
  for (long second = 0; second < SECONDS; second++) {
    long first = second * PER_SECOND + 1;
    step_rows(&insert_prediction, first, PER_SECOND, bind_prediction);
    PHASE(0);
    sort_keys(first);
    key_base = 0;
    step_rows(&insert_key, 0, PER_SECOND, bind_key);
    PHASE(1);
    if (second >= WINDOW) {
      long old = (second - WINDOW) * PER_SECOND + 1;
      step_rows(&delete_prediction, old, PER_SECOND, bind_seq);
      PHASE(2);
      sort_keys(old);
      int saved = batch;
      batch = 1;
      step_rows(&delete_key, 0, PER_SECOND, bind_key);
      batch = saved;
      PHASE(3);
      step_rows(&insert_finished, old, PER_SECOND, bind_finished);
      PHASE(4);
    }
    sqlite3_bind_int64(prune, 1, second * PER_SECOND * 1000L);  // the watermark: now
    run(prune);
    PHASE(5);
    exec("COMMIT");
    exec("BEGIN");
    PHASE(6);
  }
  double total = cpu_now() - start;
  printf("%s (%d rows a statement): %.3f s of CPU for %d simulated seconds\n", batch > 1 ? "batch" : "one", batch,
         total, SECONDS);
  for (int i = 0; i < 7; i++) printf("  %-20s %.3f s\n", phases[i], spent[i]);
  sqlite3_close(db);
  return 0;
}
