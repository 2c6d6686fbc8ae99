#!/usr/bin/env bash
# install_test.sh BUILD_DIR SOURCE_DIR: cmake --install into a temporary prefix, then build a
# consumer program with pkg-config and run it, and run the installed normscope program.
set -euo pipefail
build=$1 src=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" > /dev/null
libdir=$(dirname "$(find "$prefix" -name normscope.pc)")/..
export PKG_CONFIG_PATH=$libdir/pkgconfig
test -f "$prefix/include/normscope.h" || { echo "FAIL header not installed"; exit 1; }
cc -std=c11 -Wall -Wextra -Werror "$src/tests/install/consumer.c" -o "$prefix/consumer" \
   $(pkg-config --cflags --libs normscope) -Wl,-rpath,"$(pkg-config --variable=libdir normscope)" \
   ${NS_SANITIZE_FLAGS:-}
"$prefix/consumer"
"$prefix/bin/normscope" --version | grep -q "^normscope " || { echo "FAIL installed normscope"; exit 1; }
echo "install_test: 1 passed, 0 failed"
