#!/usr/bin/env bash
# Run the MLflow tracking server (runs, metrics, artifacts, model registry) on 127.0.0.1.
#
#   mlflow/server.sh [--port 5000] [--backend-store-uri sqlite:///mlruns/mlflow.db]
#                    [--artifacts-destination mlruns/artifacts]
#
# or `smista mlflow server` (same flags). Lean settings, measured on our 2-core machines
# (docs in mlflow/README.md): one worker and no job runner (the defaults start 15 processes,
# about 3 GB, and halved training speed while idle), telemetry off. The server proxies artifacts,
# so clients only need the URL: MLFLOW_TRACKING_URI=http://127.0.0.1:5000
set -euo pipefail

port=5000
backend_store_uri=sqlite:///mlruns/mlflow.db
artifacts_destination=mlruns/artifacts
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port=$2; shift 2 ;;
        --backend-store-uri) backend_store_uri=$2; shift 2 ;;
        --artifacts-destination) artifacts_destination=$2; shift 2 ;;
        *) echo "mlflow/server.sh: unknown argument $1 (expected --port, --backend-store-uri, --artifacts-destination)" >&2; exit 2 ;;
    esac
done

# SQLite does not create the folder of its database file.
case "$backend_store_uri" in
    sqlite:///*) mkdir -p "$(dirname "${backend_store_uri#sqlite:///}")" ;;
esac
mkdir -p "$artifacts_destination"

export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
export MLFLOW_DISABLE_TELEMETRY=true
# The mlflow of the project's virtual environment unless the caller names another one.
mlflow_bin=${MLFLOW_BIN:-$(dirname "$0")/../.venv/bin/mlflow}
[ -x "$mlflow_bin" ] || mlflow_bin=mlflow

exec "$mlflow_bin" server \
    --host 127.0.0.1 \
    --port "$port" \
    --workers 1 \
    --backend-store-uri "$backend_store_uri" \
    --artifacts-destination "$artifacts_destination"
