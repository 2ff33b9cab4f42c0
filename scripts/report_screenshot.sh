#!/usr/bin/env bash
# Screenshot of an HTML report with headless Chromium (Debian: apt-get install chromium), e.g.
#   bash scripts/report_screenshot.sh build/demo-report.html docs/care-report.png
# The page fetches nothing; the flags keep Chromium itself off the network.
set -euo pipefail
page=$(realpath "$1")
output=$(realpath -m "$2")
height=${HEIGHT:-2600}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
    --window-size=1280,"$height" --screenshot="$output" "file://$page" 2>/dev/null
echo "screenshot: $output"
