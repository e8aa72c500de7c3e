#!/usr/bin/env bash
# Offline validation of Verity's Kubernetes manifests and monitoring files (no cluster needed).
#
# Usage: deploy/k8s/validate.sh [--tools] [--only STAGES] [KUSTOMIZATION_DIR...]
#   KUSTOMIZATION_DIR  what to build (default: deploy/k8s/overlays/dev, overlays/prod, examples)
#   --tools            install the tools the stages need if missing, then exit
#   --only STAGES      comma-separated subset of: kubernetes,schemas,checkov,monitoring,generated
#                      (default: all; `kustomize build` always runs, except for monitoring alone)
# Stages:
#   kubernetes  core kinds against the Kubernetes OpenAPI schemas, strict (kubernetes-validate),
#               for the oldest (1.30) and newest (1.37) Kubernetes it knows
#   schemas     custom resources (Strimzi, CloudNativePG, KEDA, Prometheus Operator) against the
#               CRD schemas vendored in deploy/k8s/schemas (check-jsonschema; unknown fields fail)
#   checkov     security/policy checks; every skip is justified in deploy/k8s/.checkov.yaml
#   monitoring  promtool check rules + promtool test rules on deploy/monitoring
#   generated   topics, users, PrometheusRule and dashboard match deploy/k8s/generate.py
# Tools (pinned; installed on first use into $VERITY_TOOLS_DIR, default .run/tools):
#   kustomize (go install from the Go module proxy), kubernetes-validate, check-jsonschema,
#   checkov (uv tool install from PyPI, outside the project's lock), promtool (extracted from
#   Debian's `prometheus` package with apt-get download; nothing is installed system-wide).
# Exit status: 0 all passed, 1 a check failed, 3 a tool could not be installed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TOOLS=${VERITY_TOOLS_DIR:-$ROOT/.run/tools}
BIN=$TOOLS/bin
MONITORING=$ROOT/deploy/monitoring

KUSTOMIZE_VERSION=v5.8.2  # v5.8.3 needs Go >= 1.27; v5.8.2 builds with Go 1.26
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECK_JSONSCHEMA_VERSION=0.39.0
CHECKOV_VERSION=3.3.30
K8S_VERSIONS=(1.30.0 1.37.0)

say() { printf 'validate: %s\n' "$*" >&2; }
die_tool() { say "cannot install $1: $2"; exit 3; }

ensure_kustomize() {
  [[ -x $BIN/kustomize && -f $BIN/.kustomize-$KUSTOMIZE_VERSION ]] && return
  command -v go >/dev/null 2>&1 || die_tool kustomize "no go on PATH"
  say "installing kustomize $KUSTOMIZE_VERSION (go install)"
  mkdir -p "$BIN"
  GOBIN=$BIN GOFLAGS=-modcacherw \
    GOMODCACHE=$TOOLS/go/mod GOCACHE=$TOOLS/go/cache \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2 \
    || die_tool kustomize "go install failed"
  rm -rf "$TOOLS/go"  # module and build caches: large, and not needed once built
  touch "$BIN/.kustomize-$KUSTOMIZE_VERSION"
}

ensure_pypi_tool() {  # name version
  local name=$1 version=$2
  [[ -x $BIN/$name && -f $BIN/.$name-$version ]] && return
  command -v uv >/dev/null 2>&1 || die_tool "$name" "no uv on PATH"
  say "installing $name $version (uv tool install)"
  mkdir -p "$BIN"
  UV_TOOL_DIR=$TOOLS/uv-tools UV_TOOL_BIN_DIR=$BIN \
    uv tool install --quiet --force --python 3.11 "$name==$version" >&2 \
    || die_tool "$name" "uv tool install failed"
  touch "$BIN/.$name-$version"
}

ensure_promtool() {
  if command -v promtool >/dev/null 2>&1; then PROMTOOL=$(command -v promtool); return; fi
  PROMTOOL=$BIN/promtool
  [[ -x $PROMTOOL ]] && return
  command -v apt-get >/dev/null 2>&1 || die_tool promtool "no apt-get (install Prometheus' promtool)"
  say "extracting promtool from Debian's prometheus package"
  local tmp; tmp=$(mktemp -d)
  # apt-get download needs the package lists; refresh them once if they are missing/stale
  (cd "$tmp" && apt-get download -q prometheus >&2) \
    || { apt-get update -q >&2 && (cd "$tmp" && apt-get download -q prometheus >&2); } \
    || { rm -rf "$tmp"; die_tool promtool "apt-get download prometheus failed"; }
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" || { rm -rf "$tmp"; die_tool promtool "dpkg-deb"; }
  mkdir -p "$BIN" && install -m 0755 "$tmp/x/usr/bin/promtool" "$PROMTOOL"
  rm -rf "$tmp"
}

STAGES=kubernetes,schemas,checkov,monitoring,generated
TOOLS_ONLY=0
DIRS=()
while (($#)); do
  case $1 in
    --tools) TOOLS_ONLY=1 ;;
    --only) shift; STAGES=${1:?--only needs a list} ;;
    -h|--help) sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) DIRS+=("$1") ;;
  esac
  shift
done
((${#DIRS[@]})) || DIRS=("$HERE/overlays/dev" "$HERE/overlays/prod" "$HERE/examples")
has() { [[ ,$STAGES, == *,$1,* ]]; }

if ((TOOLS_ONLY)); then  # the tools the selected stages need
  if has kubernetes || has schemas || has checkov; then ensure_kustomize; fi
  if has kubernetes; then ensure_pypi_tool kubernetes-validate "$KUBERNETES_VALIDATE_VERSION"; fi
  if has schemas; then ensure_pypi_tool check-jsonschema "$CHECK_JSONSCHEMA_VERSION"; fi
  if has checkov; then ensure_pypi_tool checkov "$CHECKOV_VERSION"; fi
  if has monitoring; then ensure_promtool; say "promtool: $PROMTOOL"; fi
  say "tools ready in $BIN"
  exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=()
built=()

if has kubernetes || has schemas || has checkov; then
  ensure_kustomize
  for dir in "${DIRS[@]}"; do
    name=$(basename "$dir")
    [[ -e $WORK/$name ]] && name=$name-${#built[@]}
    mkdir -p "$WORK/$name"
    if "$BIN/kustomize" build "$dir" > "$WORK/$name/built.yaml"; then
      python3 "$HERE/split.py" "$WORK/$name/built.yaml" "$WORK/$name" >&2 || failed+=("split $name")
      built+=("$name")
    else
      failed+=("kustomize build $dir")
    fi
  done
fi

checkov_pid=
if has checkov && ((${#built[@]})); then  # the slowest check: run it alongside the others
  ensure_pypi_tool checkov "$CHECKOV_VERSION"
  args=()
  for name in "${built[@]}"; do args+=(-f "$WORK/$name/built.yaml"); done
  (cd "$WORK" && "$BIN/checkov" --config-file "$HERE/.checkov.yaml" "${args[@]}") \
    > "$WORK/checkov.log" 2>&1 &
  checkov_pid=$!
fi

if has kubernetes; then
  ensure_pypi_tool kubernetes-validate "$KUBERNETES_VALIDATE_VERSION"
  versions=()
  for v in "${K8S_VERSIONS[@]}"; do versions+=(-k "$v"); done
  for name in "${built[@]}"; do
    if "$BIN/kubernetes-validate" --strict --quiet "${versions[@]}" "$WORK/$name/core.yaml"; then
      say "kubernetes: $name ok"
    else
      failed+=("kubernetes-validate $name")
    fi
  done
  "$BIN/kubernetes-validate" --strict --quiet "${versions[@]}" "$HERE/secrets.example.yaml" \
    || failed+=("kubernetes-validate secrets.example.yaml")
fi

if has schemas; then
  ensure_pypi_tool check-jsonschema "$CHECK_JSONSCHEMA_VERSION"
  for name in "${built[@]}"; do
    shopt -s nullglob
    crs=("$WORK/$name"/cr/*.yaml)
    shopt -u nullglob
    ((${#crs[@]})) || continue
    if "$BIN/check-jsonschema" --schemafile "$HERE/schemas/custom-resources.json" "${crs[@]}"; then
      say "schemas: $name ok (${#crs[@]} custom resources)"
    else
      failed+=("check-jsonschema $name")
    fi
  done
fi

if has monitoring; then
  ensure_promtool
  if "$PROMTOOL" check rules "$MONITORING/alerts.yaml" >&2 \
    && (cd "$MONITORING" && "$PROMTOOL" test rules alerts.test.yaml >&2); then
    say "monitoring: rules ok"
  else
    failed+=("promtool")
  fi
fi

if has generated; then
  if (cd "$ROOT" && uv run --frozen --quiet python deploy/k8s/generate.py --check); then
    say "generated: up to date"
  else
    failed+=("generate.py --check")
  fi
fi

if [[ -n $checkov_pid ]]; then
  if wait "$checkov_pid"; then
    say "checkov: ${built[*]} ok"
  else
    cat "$WORK/checkov.log" >&2
    failed+=("checkov")
  fi
fi

if ((${#failed[@]})); then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "all passed (${STAGES//,/ }${built:+; built: ${built[*]}})"
