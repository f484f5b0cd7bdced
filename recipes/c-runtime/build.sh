#!/bin/sh
# Compiles the C bootstrap inside the target's build image, writing ./bootstrap.
#
# A static link needs no glibc at run time, so one binary serves every
# provided.* runtime. Images without a static C library (Amazon Linux's build
# images lack glibc-static unless it is installed) get a dynamic link against
# their own glibc instead, which the layer audit then holds to the runtime's.
set -eu
flags="-Os -Wall -Wextra -s"
if cc $flags -static -o bootstrap c-runtime/bootstrap.c 2>/dev/null; then
    echo "linked bootstrap statically"
else
    echo "no static C library here: linking bootstrap against this image's glibc"
    cc $flags -o bootstrap c-runtime/bootstrap.c
fi
