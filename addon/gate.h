/* The address of the preload library's syscall gate: system calls made from this page pass the seccomp filter
 * without a ptrace stop (see preload.c). Shared by the filter (filter.h) and the library. */
#pragma once
#define UCVMFS_GATE_ADDR 0x200000000000UL
#define UCVMFS_GATE_SIZE 4096UL
/* Offset in the gate page of the byte the tracer sets to close the gate for a process (see preload.c). */
#define UCVMFS_GATE_CLOSED 2048
