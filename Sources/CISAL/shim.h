// Intel ISA-L's inflate (Debian: libisal-dev; Homebrew: isa-l), which reads the gzip files:
// 2.8x faster than zlib's on the benchmark corpus (see README, Dependencies).
#include <isa-l/igzip_lib.h>
