// The module is header-only (`feedbackd_sqlite_keep_wal_on_close` is inline); SwiftPM wants one
// source file.
#include "CSQLiteOptions.h"
