# Sourced by the scripts: keep every library from calling out (models and data are local).
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export MLFLOW_DISABLE_TELEMETRY=true BENTOML_DO_NOT_TRACK=true DO_NOT_TRACK=1
export TOKENIZERS_PARALLELISM=false
