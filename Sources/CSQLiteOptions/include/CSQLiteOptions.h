#ifndef FEEDBACKD_CSQLITEOPTIONS_H
#define FEEDBACKD_CSQLITEOPTIONS_H

#include <sqlite3.h>

/// Closing the connection leaves the write-ahead log as it is instead of checkpointing it into
/// the database file (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`). Committed transactions are durable
/// in the log (`synchronous = FULL`), and the next connection reads them from there. Swift
/// cannot call the variadic `sqlite3_db_config`, hence this wrapper. Returns SQLite's result
/// code.
static inline int feedbackd_sqlite_keep_wal_on_close(sqlite3 *db) {
  int enabled = 0;
  return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &enabled);
}

#endif
