#!/bin/bash
# The dependency rule of server/ (README "Design"): a layer includes only the layers
# below it, never one above, and signal/ and io/ do not include each other.
#   app  ->  signal, io  ->  sfu  ->  rtc  ->  proto  ->  common, config
# io/tx.h, the send interface, is below rtc (rtc and sfu send through it).
# Prints every violation and ends with "N passed, N failed" (one check per file).
cd "$(dirname "$0")/.." || exit 2
rank() {
    case $1 in
    common/* | config/*) echo 0 ;;
    server/proto/*) echo 1 ;;
    server/io/tx.h) echo 1 ;;
    server/rtc/*) echo 2 ;;
    server/sfu/*) echo 3 ;;
    server/signal/* | server/io/*) echo 4 ;;
    server/app/*) echo 5 ;;
    *) echo 9 ;;
    esac
}
passed=0
failed=0
for file in $(git ls-files --cached --others --exclude-standard 'server/*.[ch]' | sort); do
    if [ "$(rank "$file")" = 9 ]; then
        echo "FAILED $file: not in a layer directory (proto rtc sfu io signal app)"
        failed=$((failed + 1))
        continue
    fi
    bad=0
    mine=$(rank "$file")
    layer=$(echo "$file" | cut -d/ -f2)
    while read -r inc; do
        [ -z "$inc" ] && continue
        theirs=$(rank "$inc")
        other=$(echo "$inc" | cut -d/ -f2)
        if [ "$theirs" -gt "$mine" ] ||
            { [ "$theirs" = 4 ] && [ "$mine" = 4 ] && [ "$layer" != "$other" ] && [ "$inc" != server/io/tx.h ]; }; then
            echo "FAILED $file includes $inc: $layer/ may not depend on $other/"
            bad=1
        fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$file")
    if [ $bad = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
