// The module is header-only (`feedbackd_prefetch` is inline); SwiftPM wants one source file.
#include "CPrefetch.h"
