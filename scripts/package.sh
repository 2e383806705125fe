#!/usr/bin/env bash
# Tarball laid out as it goes onto the firmware: target/package/messenger-<version>-armv7.tar.gz.
#
#   usr/bin/messenger                     the armv7 binary (built by scripts/armv7.sh if missing)
#   etc/init.d/messenger                  SysV init script   (board/messenger.init)
#   lib/systemd/system/messenger.service  systemd unit       (board/messenger.service)
#   etc/messenger/messenger.json          default configuration (board/messenger.json)
#   etc/messenger/messenger-relay.json    in front of Thunder (board/messenger-relay.json)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=$(bash scripts/armv7.sh path)
[ -x "$BIN" ] || bash scripts/armv7.sh build
VERSION=$(awk -F'"' '/^version *=/ { print $2; exit }' Cargo.toml)
OUT=target/package/messenger-$VERSION-armv7.tar.gz
STAGE=target/package/root

rm -rf "$STAGE"
install -D -m 0755 "$BIN" "$STAGE/usr/bin/messenger"
install -D -m 0755 board/messenger.init "$STAGE/etc/init.d/messenger"
install -D -m 0644 board/messenger.service "$STAGE/lib/systemd/system/messenger.service"
install -D -m 0644 board/messenger.json "$STAGE/etc/messenger/messenger.json"
install -D -m 0644 board/messenger-relay.json "$STAGE/etc/messenger/messenger-relay.json"

# The same inputs give the same bytes: fixed owner, order and times.
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
tar --create --directory "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$EPOCH" etc lib usr | gzip -n -9 >"$OUT"
rm -rf "$STAGE"

echo "$OUT ($(stat -c %s "$OUT") bytes):"
tar --list --verbose --gzip --file "$OUT"
