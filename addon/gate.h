/* The address of the preload library's syscall gate: system calls made from this page pass the seccomp filter
 * without a ptrace stop (see preload.c). Shared by the filter (filter.h) and the library. */
#pragma once
#define UCVMFS_GATE_ADDR 0x200000000000UL
#define UCVMFS_GATE_SIZE 4096UL
/* Offset in the gate page of the byte the tracer sets to close the gate for a process (see preload.c). */
#define UCVMFS_GATE_CLOSED 2048
/* Offset of the byte the tracer sets in a process that traces others (the ptrace emulation): its waits then stop
 * in the tracer again (see preload.c). */
#define UCVMFS_GATE_TRACER 2049
/* The wait gate, at this offset of the page: the same argument moves as the gate, then a test of the tracer byte
 * next to its `syscall`, so that the tracer can tell a wait that passed the test from one that did not. When the
 * byte is set it returns -EINTR without the call, and the library makes the wait through libc (a stop). */
#define UCVMFS_WAIT_GATE 64
/* Offsets in the page: the byte test (where the tracer sends a wait back to), its `syscall`, and the `ret` after. */
#define UCVMFS_WAIT_GATE_TEST (UCVMFS_WAIT_GATE + 18)
#define UCVMFS_WAIT_GATE_SYSCALL (UCVMFS_WAIT_GATE + 27)
#define UCVMFS_WAIT_GATE_RET (UCVMFS_WAIT_GATE + 29)
