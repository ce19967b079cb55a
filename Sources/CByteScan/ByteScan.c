// The module is header-only (`feedbackd_json_classify64` is inline); SwiftPM wants one source file.
#include "ByteScan.h"
