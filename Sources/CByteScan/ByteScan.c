// The module is header-only (`feedbackd_json_index_quotes` is inline); SwiftPM wants one source file.
#include "ByteScan.h"
