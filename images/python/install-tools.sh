#!/bin/sh
# Runs once while the build image is made. Adds only what a layerbuild build
# needs on top of the base image, with whichever package manager the base has.
set -eu

missing=""
for tool in objdump patchelf find; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    # Package names are the same on Amazon Linux and Debian for these three.
    packages=""
    case "$missing" in *objdump*) packages="$packages binutils" ;; esac
    case "$missing" in *patchelf*) packages="$packages patchelf" ;; esac
    case "$missing" in *find*) packages="$packages findutils" ;; esac
    if command -v dnf >/dev/null 2>&1; then
        dnf install -y $packages && dnf clean all
    elif command -v yum >/dev/null 2>&1; then
        # Amazon Linux 2 has patchelf only in EPEL: go on without it there.
        yum install -y $packages || yum install -y binutils findutils
        yum clean all
    elif command -v apt-get >/dev/null 2>&1; then
        apt-get update && apt-get install -y --no-install-recommends $packages
        rm -rf /var/lib/apt/lists/*
    else
        echo "install-tools: no dnf, yum or apt-get to install:$packages" >&2
        exit 1
    fi
fi

# Certificates for the index, when given: only for the pip call below.
if [ -s /tmp/layerbuild-image/ca-bundle.pem ]; then
    export PIP_CERT=/tmp/layerbuild-image/ca-bundle.pem
fi

# pip-tools lives in a venv of the target interpreter, so pip-compile resolves
# for exactly the Python the layer runs on, and the system site stays as it was.
python="python${PYTHON_VERSION}"
if ! command -v "$python" >/dev/null 2>&1; then
    echo "install-tools: this image has no $python" >&2
    exit 1
fi
"$python" -m venv /opt/layerbuild/tools
/opt/layerbuild/tools/bin/pip install --no-cache-dir --disable-pip-version-check \
    --upgrade pip "$PIP_TOOLS_REQUIREMENT"
chmod -R a+rX /opt/layerbuild
