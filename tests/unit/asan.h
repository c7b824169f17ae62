/* HAVE_ASAN: defined when the test is built with AddressSanitizer (gcc or clang). Tests that
 * replace the malloc family (allocation counters, failure injection) need it: ASan's own
 * allocator must win under the sanitizer. */
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
