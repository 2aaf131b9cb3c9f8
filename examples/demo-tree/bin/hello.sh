#!/bin/sh
echo "hello from demo.example.org, revision-independent since 2026 (args: $*)"
