#ifndef BALLOT_CMALLOCTUNING_H
#define BALLOT_CMALLOCTUNING_H

/// Fix glibc's threshold above which an allocation is mapped from the
/// kernel (and unmapped when freed), so glibc no longer raises it as such
/// blocks are freed. C because Swift's Glibc module leaves out <malloc.h>.
/// Returns 1 when set, 0 when not (or where the C library is not glibc).
int ballot_fix_mmap_threshold(int bytes);

#endif
