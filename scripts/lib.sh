# shellcheck shell=bash
# Common settings for the sparsemem-devmem scripts.  Sourced, never run.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${SMDM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sparsemem-devmem}
BASE_TAG=${BASE_TAG:-smdm-base}
# The base tree: the user's own (KERNEL_SRC) or Debian's linux-source-7.3.
if [ -n "${KERNEL_SRC:-}" ]; then
	BASE_SRC=$(cd "$KERNEL_SRC" && pwd)
else
	BASE_SRC=$CACHE/linux-base
fi
SERIES_SRC=${SERIES_SRC:-$CACHE/linux-series}
BUILD_BASE=${BUILD_BASE:-$CACHE/build-base}
BUILD_SERIES=${BUILD_SERIES:-$CACHE/build-series}
TOOLS_DIR=$CACHE/tools
export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export PATH="$HOME/.cargo/bin:$PATH"
if command -v llvm-config-19 >/dev/null 2>&1; then
	LIBCLANG_PATH=${LIBCLANG_PATH:-$(llvm-config-19 --libdir)}
	export LIBCLANG_PATH
fi

die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }

# Wall-clock timing of a stage, appended to $CACHE/times.log.
timed() {
	local what=$1 t0 t1 rc=0
	shift
	t0=$(date +%s)
	"$@" || rc=$?
	t1=$(date +%s)
	mkdir -p "$CACHE"
	printf '%s %s %ds rc=%d\n' "$(date -u +%FT%TZ)" "$what" $((t1 - t0)) "$rc" >>"$CACHE/times.log"
	log "$what: $((t1 - t0)) s"
	return $rc
}

is_kernel_tree() {
	[ -f "$1/Makefile" ] && [ -f "$1/mm/sparse.c" ] && [ -f "$1/Kconfig" ] &&
		grep -q '^VERSION = ' "$1/Makefile"
}

kernel_version() {
	make -s -C "$1" kernelversion 2>/dev/null
}

# Directory of the source tree that belongs to a build kind (base|series).
src_for() {
	case $1 in
	base) echo "$BASE_SRC" ;;
	series) echo "$SERIES_SRC" ;;
	*) die "unknown kernel kind '$1' (base|series)" ;;
	esac
}

build_for() {
	case $1 in
	base) echo "$BUILD_BASE" ;;
	series) echo "$BUILD_SERIES" ;;
	*) die "unknown kernel kind '$1' (base|series)" ;;
	esac
}

# The patches of the series in 'git am' order, cover letters left out.
# patches/ holds one folder per separately postable series (applied in the
# order of the folders' names, see scripts/config/series.txt), or the
# patches themselves.
#   series_patches [DIR]
series_patches() {
	local d=${1:-$REPO/patches}
	find "$d" -mindepth 1 -maxdepth 2 -name '[0-9][0-9][0-9][0-9]-*.patch' \
		! -name '0000-cover-letter.patch' -printf '%P\n' | sort | sed "s|^|$d/|"
}
# The cover letters, one per series, in the same order.
series_covers() {
	local d=${1:-$REPO/patches}
	find "$d" -mindepth 1 -maxdepth 2 -name '0000-cover-letter.patch' -printf '%P\n' |
		sort | sed "s|^|$d/|"
}

# One walker for "each commit of the series": calls FUNC COMMIT SUBJECT with
# $SERIES_SRC checked out at every commit from the base on, oldest first
# (with PATHs, only the commits that touch them).  The caller restores the
# branch head afterwards (its EXIT trap).
#   walk_series FUNC [PATH...]
walk_series() {
	local fn=$1 base c
	shift
	base=$(git -C "$BASE_SRC" rev-parse "$BASE_TAG^{commit}")
	for c in $(git -C "$SERIES_SRC" rev-list --reverse "$base..HEAD" -- "$@"); do
		git -C "$SERIES_SRC" checkout -q "$c"
		"$fn" "$c" "$(git -C "$SERIES_SRC" log -1 --format=%s "$c")"
	done
}
