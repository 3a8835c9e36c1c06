#!/bin/sh
# dh-hwcaps: builds and installs the glibc-hwcaps variants of a package.
# One static file for both ways of using it:
#   addon: the dh_hwcaps_* commands of dh-hwcaps (dh-sequence-hwcaps) run
#     HWCAPS_MODE=addon sh /usr/share/dh-hwcaps/hwcaps-variants.sh STEP
#     with the configuration in debian/hwcaps and its state in debian/.hwcaps/;
#   embed: a converted package's own copy, debian/hwcapdeb/variants.sh, run by
#     its generated debian/rules, configuration in debian/hwcapdeb/hwcaps.
# STEP is check|snapshot|build|variants|shims|install|stash|unstash|clean,
# run from the top of the source tree.  Needs only sh, make, perl (dpkg-dev's Dpkg modules),
# coreutils, tar, find, binutils (readelf, nm): hwcapdeb is not installed in
# build chroots, nor is python.  hwcaps-config (beside this file) reads and
# checks the configuration: a mistake fails the build at its first step with
# one line naming the file, the field and the fix.
#
# Environment:
#   HWCAPDEB_VARIANT_TESTS=auto|all|none  (default auto) run each variant's
#     test suite natively when this CPU supports the level (ld.so --help),
#     under qemu-user when it does not and qemu can emulate the level,
#     else skip it with a line in the log; "all" fails instead of skipping,
#     "none" skips every variant's tests.  nocheck in DEB_BUILD_OPTIONS skips them.
#   HWCAPDEB_VARIANT_JOBS=N  variant builds at once.
#     Default: all of them with parallel=N (N >= 2) in DEB_BUILD_OPTIONS when
#     the rules use dh (whose test step the test lock wraps) or no variant
#     runs its tests, else 1: one after the other.  In embed mode they build
#     beside the baseline build (or after it with 1); in addon mode after the
#     baseline's dh_auto_test (dh_hwcaps_build).
set -e

# where hwcaps-config and architectures are (HWCAPS_DATADIR: tests, which
# source this file with HWCAPS_LIB_ONLY=1 to call its functions)
HERE=${HWCAPS_DATADIR:-$(cd "$(dirname "$0")" && pwd)}
MODE=${HWCAPS_MODE:-embed}
case "$MODE" in
addon)
	DIR=debian/.hwcaps
	CONFIG=${HWCAPS_CONFIG:-debian/hwcaps}
	RULES_FILE=debian/rules
	;;
embed)
	DIR=debian/hwcapdeb
	CONFIG=${HWCAPS_CONFIG:-$DIR/hwcaps}
	RULES_FILE=$DIR/maintainer.rules
	;;
*)
	echo "hwcapdeb: error: HWCAPS_MODE must be addon or embed (got '$MODE')" >&2
	exit 2
	;;
esac
# The variants' trees (a dot directory; in embed mode a link to a directory
# beside the tree, see make_state_dirs).
BUILD_ROOT=$DIR/.build

# The configuration as shell variables: ARCH TRIPLET LOADER QEMU ISA_MARKER
# LEVELS LAYOUT LIB_PACKAGES SPLIT_PACKAGES VARIANT_ENV VARIANT_MAKE_VARS and
# HWCAPS_{CFLAGS,LDFLAGS,ABOVE,QEMU_CPU}_<level> (see hwcaps-config).
load_config() {
	config=$(perl "$HERE/hwcaps-config" "$CONFIG" "$HERE/architectures") || exit 2
	eval "$config"
}

level_value() {  # level_value KIND LEVEL: HWCAPS_<KIND>_<level> of the configuration
	name=HWCAPS_${1}_$(printf '%s' "$2" | tr -c 'A-Za-z0-9' '_')
	eval "printf '%s\\n' \"\${$name}\""
}
level_cflags() { level_value CFLAGS "$1"; }
level_ldflags() { level_value LDFLAGS "$1"; }
# the levels above $1: a marker naming one makes the file unloadable at $1
level_above() { level_value ABOVE "$1"; }
level_qemu_cpu() { level_value QEMU_CPU "$1"; }
level_count() {
	# shellcheck disable=SC2086 # a list of words
	set -- $LEVELS
	echo $#
}

say() { echo "hwcapdeb: $*"; }
die() { echo "hwcapdeb: error: $*" >&2; exit 1; }

has_build_option() {
	for opt in $DEB_BUILD_OPTIONS; do
		case "$opt" in "$1" | "$1"=*) return 0 ;; esac
	done
	return 1
}

build_option_value() {  # the VALUE of NAME=VALUE in DEB_BUILD_OPTIONS
	for opt in $DEB_BUILD_OPTIONS; do
		case "$opt" in "$1"=*) echo "${opt#*=}" && return 0 ;; esac
	done
}

# The maintainer's rules run dh's sequencer (a recipe line "dh ..."): the dh
# addon then wraps every build's test step in the test lock.
uses_dh_sequencer() {
	grep -Eq '^[[:space:]]+dh[[:space:]]' "$RULES_FILE"
}

# The variants' trees, logs and stamps (the test lock) change while they
# build.  In embed mode they build beside the baseline build, whose tree
# walkers (dh_autoreconf's find and md5sum, test discovery, the maintainer's
# own) must not see files of them appear and vanish: they live in a directory
# beside the source tree (where dpkg-buildpackage writes the .debs), reached
# through symbolic links, which those walkers do not follow.  Where that
# directory cannot be made, and in addon mode (whose variants build after the
# baseline's build steps), they live in the tree.
STATE_LINKS="$BUILD_ROOT $DIR/logs $DIR/stamps"

make_state_dirs() {
	remove_state_dirs
	mkdir -p "$DIR"
	outside=
	if [ "$MODE" = embed ]; then
		outside=$(mktemp -d "$(cd .. && pwd)/.hwcapdeb-$(basename "$(pwd)").XXXXXX" 2>/dev/null) || outside=
	fi
	if [ -z "$outside" ]; then
		mkdir -p "$BUILD_ROOT" "$DIR/logs" "$DIR/stamps"
		return 0
	fi
	pwd >"$outside/owner"
	mkdir "$outside/build" "$outside/logs" "$outside/stamps"
	ln -s "$outside/build" "$BUILD_ROOT"
	ln -s "$outside/logs" "$DIR/logs"
	ln -s "$outside/stamps" "$DIR/stamps"
}

remove_state_dirs() {  # the directories beside the tree only if this tree made them
	for link in $STATE_LINKS; do
		if [ -L "$link" ]; then
			outside=$(readlink "$link")
			outside=${outside%/*}
			if [ "$(cat "$outside/owner" 2>/dev/null)" = "$(pwd)" ]; then
				rm -rf "$outside"
			fi
			rm -f "$link"
		else
			rm -rf "$link"
		fi
	done
}

cmd_snapshot() {
	# The pristine tree (dpkg-buildpackage has just run clean), taken before the
	# baseline build writes into it; .pc stays so quilt-using rules see their
	# patches as applied.
	[ -f "$DIR/stamps/snapshot" ] && return 0
	make_state_dirs
	tar --create --file "$BUILD_ROOT/pristine.tar" --exclude=./.git \
		--exclude="./$BUILD_ROOT" --exclude="./$DIR/logs" --exclude="./$DIR/stamps" \
		--exclude="./$DIR/bin" .
	touch "$DIR/stamps/snapshot"
}

# The goal a variant runs in its copy of the tree: install-arch where the
# rules use dh (its sequence stops after dh_auto_install, see
# the dh addon, Debian/Debhelper/Sequence/hwcaps.pm), so libraries are
# installed (libtool relinks them) as for the baseline; else build-arch;
# else build.
variant_goal() {
	db=$(cd "$1" && { LC_ALL=C HWCAPDEB_PASS=1 ${MAKE:-make} -Rrnpsf debian/rules hwcapdeb-probe 2>/dev/null || true; })
	if printf '%s\n' "$db" | grep -q '^install-arch:'; then
		echo install-arch
	elif printf '%s\n' "$db" | grep -q '^%:' &&
		grep -Eq '^[[:space:]]+dh[[:space:]]+["'"'"']?(\$@|\$\(@\)|\$\{@\})' "$RULES_FILE"; then
		echo install-arch
	elif printf '%s\n' "$db" | grep -Eq '^(build-arch|%):'; then
		echo build-arch
	else
		echo build
	fi
}

# How this variant's tests run: "native", "qemu:<cpu>" or "skip:<reason>".
test_mode() {
	policy=${HWCAPDEB_VARIANT_TESTS:-auto}
	case "$policy" in
	auto | all | none) ;;
	*) die "HWCAPDEB_VARIANT_TESTS must be auto, all or none (got '$policy')" ;;
	esac
	if [ "$policy" = none ]; then
		echo "skip:HWCAPDEB_VARIANT_TESTS=none"
		return
	fi
	if has_build_option nocheck; then
		echo "skip:nocheck in DEB_BUILD_OPTIONS"
		return
	fi
	if [ -n "$DEB_BUILD_ARCH" ] && [ "$DEB_BUILD_ARCH" != "${DEB_HOST_ARCH:-$DEB_BUILD_ARCH}" ]; then
		reason="cross build ($DEB_BUILD_ARCH to $DEB_HOST_ARCH)"
	elif "$LOADER" --help 2>/dev/null | grep -q "^  $1 (supported"; then
		echo native
		return
	else
		cpu=$(level_qemu_cpu "$1")
		if [ -n "$cpu" ] && [ -n "$QEMU" ] && command -v "$QEMU" >/dev/null 2>&1; then
			echo "qemu:$cpu"
			return
		elif [ -z "$cpu" ]; then
			reason="this CPU does not support $1 and qemu-user cannot emulate it"
		else
			reason="this CPU does not support $1 and $QEMU is not installed (qemu-user)"
		fi
	fi
	if [ "$policy" = all ]; then
		die "$1: cannot run the tests: $reason (HWCAPDEB_VARIANT_TESTS=all)"
	fi
	echo "skip:$reason"
}

# Build profiles that save variant builds work they do not need (multilib
# and installer builds); a variant whose rules do not survive them is built
# again without them.  No nodoc: it skips dh_installman & co. and real
# maintainer hooks that post-process their output then fail (libzstd), while
# arch-only builds rarely build documentation anyway.
SAVER_PROFILES='nobiarch noudeb'

# With those profiles goes an autoconf site file (CONFIG_SITE, unless the
# environment names one) that defaults libtool to --disable-static: a variant
# ships no static archives, and libtool otherwise compiles every source twice.
# An explicit --enable-static in the rules still wins.
SAVER_SITE="$(pwd)/$DIR/stamps/config.site"
write_saver_site() {
	mkdir -p "${SAVER_SITE%/*}"
	cat >"$SAVER_SITE" <<'SITE'
# hwcapdeb (hwcaps-variants.sh): a variant build ships no static archives.
test "${enable_static+set}" = set || enable_static=no
# autoconf's own defaults, which CONFIG_SITE replaces
if test "x$prefix" != xNONE; then hwcapdeb_site_prefix=$prefix; else hwcapdeb_site_prefix=$ac_default_prefix; fi
for hwcapdeb_site in "$hwcapdeb_site_prefix/share/config.site" "$hwcapdeb_site_prefix/etc/config.site"; do
	if test -r "$hwcapdeb_site"; then . "$hwcapdeb_site"; fi
done
: # autoconf refuses a site script whose last command fails
SITE
}

# run_variant TREE GOAL OPTIONS PROFILES LOG: the maintainer's GOAL in TREE.
# A fresh buildflags environment: dh exported CFLAGS & co. once for the
# baseline; without them dpkg-buildflags computes them again, with the
# level's flags in DEB_*FLAGS_APPEND (dpkg puts them before the maintainer's
# DEB_*FLAGS_MAINT_APPEND; the install step checks the ISA marker).
run_variant() {
	if [ "$MODE" = embed ]; then
		# the package's own copy of the dh addon (hwcaps.pm)
		perl5lib="$(pwd)/$1/$DIR/perl${PERL5LIB:+:$PERL5LIB}"
		addons="hwcaps${DH_EXTRA_ADDONS:+,$DH_EXTRA_ADDONS}"
	else
		# dh loads the addon itself (Build-Depends: dh-sequence-hwcaps)
		perl5lib=${PERL5LIB:-}
		addons=${DH_EXTRA_ADDONS:-}
	fi
	goal=$2 build_options=$3 build_profiles=$4
	(cd "$1" &&
		eval "set -- $VARIANT_ENV \${MAKE:-make} -f debian/rules \"\$goal\" $VARIANT_MAKE_VARS" &&
		exec env -u CFLAGS -u CXXFLAGS -u CPPFLAGS -u LDFLAGS -u FFLAGS \
		-u FCFLAGS -u OBJCFLAGS -u OBJCXXFLAGS -u GCJFLAGS -u DFLAGS -u ASFLAGS \
		-u DH_INTERNAL_BUILDFLAGS -u DH_INTERNAL_OPTIONS -u DH_INTERNAL_OVERRIDE \
		HWCAPDEB_PASS=1 HWCAPDEB_VARIANT="$level" HWCAPDEB_STAGE="$stage" HWCAPDEB_PREPARED="$prepared" \
		HWCAPS_MODE="$MODE" PERL5LIB="$perl5lib" DH_EXTRA_ADDONS="$addons" \
		DEB_CFLAGS_APPEND="${DEB_CFLAGS_APPEND:+$DEB_CFLAGS_APPEND }$cflags" \
		DEB_CXXFLAGS_APPEND="${DEB_CXXFLAGS_APPEND:+$DEB_CXXFLAGS_APPEND }$cflags" \
		DEB_OBJCFLAGS_APPEND="${DEB_OBJCFLAGS_APPEND:+$DEB_OBJCFLAGS_APPEND }$cflags" \
		DEB_OBJCXXFLAGS_APPEND="${DEB_OBJCXXFLAGS_APPEND:+$DEB_OBJCXXFLAGS_APPEND }$cflags" \
		DEB_FFLAGS_APPEND="${DEB_FFLAGS_APPEND:+$DEB_FFLAGS_APPEND }$cflags" \
		DEB_FCFLAGS_APPEND="${DEB_FCFLAGS_APPEND:+$DEB_FCFLAGS_APPEND }$cflags" \
		DEB_LDFLAGS_APPEND="${DEB_LDFLAGS_APPEND:+$DEB_LDFLAGS_APPEND }$ldflags" \
		DEB_BUILD_OPTIONS="$build_options" \
		DEB_BUILD_PROFILES="$build_profiles" \
		CONFIG_SITE="${CONFIG_SITE:-${savers:+$SAVER_SITE}}" \
		"$@") >"$5" 2>&1
}

fresh_tree() {  # fresh_tree DIR [SNAPSHOT]: DIR holds the pristine (or SNAPSHOT's) tree
	rm -rf "$1"
	mkdir -p "$1"
	tar --extract --file "${2:-$BUILD_ROOT/pristine.tar}" --directory "$1"
}

# The maintainer's rules define build or build-arch themselves: dh runs them
# as they are, so a stage that stops dh's sequence early cannot stop them.
rules_define_build_target() {
	awk '/^[^[:space:]#=:][^=:]*::?([^=]|$)/ {
		sub(/:.*/, "")
		n = split($0, targets, /[[:space:]]+/)
		for (i = 1; i <= n; i++) if (targets[i] == "build" || targets[i] == "build-arch") found = 1
	} END { exit !found }' "$RULES_FILE"
}

# The variants' common start, done once instead of once per variant: a copy
# of the pristine tree after the rules' steps before dh_auto_configure
# (dh_update_autotools_config, dh_autoreconf, addons' steps), which do not
# depend on the compiler flags.  For dh rules only, with more than one level;
# if it fails, every variant starts from the pristine tree, as without it.
cmd_prepare() {
	rm -f "$BUILD_ROOT/prepared.tar"
	[ "$(level_count)" -gt 1 ] || return 0
	uses_dh_sequencer && ! rules_define_build_target || return 0
	# Worth a run of its own where dh_autoreconf has work (autotools sources,
	# or the maintainer's own autoreconf step); elsewhere those steps cost
	# each variant next to nothing.
	[ -f configure.ac ] || [ -f configure.in ] || grep -Eq 'autoreconf|autogen' "$RULES_FILE" || return 0
	tree="$BUILD_ROOT/prepared"
	log="$DIR/logs/prepare.log"
	mkdir -p "$DIR/logs"
	fresh_tree "$tree"
	level='' cflags='' ldflags='' stage=prepare prepared='' savers=yes
	profiles="${DEB_BUILD_PROFILES:+$DEB_BUILD_PROFILES }"
	say "prepare: build started (the steps before dh_auto_configure, once for all variants, log $log)"
	if run_variant "$tree" build-arch "$(variant_build_options) nocheck" "$profiles$SAVER_PROFILES" "$log"; then
		rm -f "$tree/debian/debhelper-build-stamp"
		tar --create --file "$BUILD_ROOT/prepared.tar" --directory "$tree" .
		say "prepare: done, the variants start from its tree"
	else
		say "prepare: done, not shared: those steps stopped with an error on their own, so each variant runs them (log $log)"
	fi
	rm -rf "$tree"
}

# DEB_BUILD_OPTIONS for a variant: parallel=N becomes the variant's share
# when the variants build at once (VARIANT_PARALLEL).
variant_build_options() {
	options=
	for opt in $DEB_BUILD_OPTIONS; do
		case "$opt" in
		parallel=*) [ -n "${VARIANT_PARALLEL:-}" ] || options="$options $opt" ;;
		*) options="$options $opt" ;;
		esac
	done
	options="$options${VARIANT_PARALLEL:+ parallel=$VARIANT_PARALLEL} nostrip"
	echo "${options# }"
}

build_variant() {
	level=$1
	tree="$BUILD_ROOT/$level"
	log="$DIR/logs/$level.log"
	mkdir -p "$DIR/logs"
	stage=variant prepared='' savers=yes
	if [ -f "$BUILD_ROOT/prepared.tar" ]; then
		prepared=yes
		fresh_tree "$tree" "$BUILD_ROOT/prepared.tar"
	else
		fresh_tree "$tree"
	fi
	goal=$(variant_goal "$tree")
	mode=$(test_mode "$level")
	options=$(variant_build_options)
	case "$mode" in
	native) ;;
	*) options="$options nocheck" ;;
	esac
	cflags=$(level_cflags "$level")
	ldflags=$(level_ldflags "$level")
	profiles="${DEB_BUILD_PROFILES:+$DEB_BUILD_PROFILES }"
	say "$level: build started (debian/rules $goal, log $log)"
	if run_variant "$tree" "$goal" "$options" "$profiles$SAVER_PROFILES" "$log"; then
		:
	else
		release_test_lock "$level"
		mv "$log" "$log.1"
		say "$level: build retried without the build profiles $SAVER_PROFILES or the static-off site file, from the pristine tree (first attempt: log $log.1)"
		prepared='' savers=''
		fresh_tree "$tree"
		if ! run_variant "$tree" "$goal" "$options" "${DEB_BUILD_PROFILES:-}" "$log"; then
			release_test_lock "$level"
			say "$level: build failed (log $log)"
			tail -n 60 "$log" >&2
			die "$level: the variant build failed; see $log"
		fi
	fi
	case "$mode" in
	native) say "$level: tests ran natively (debian/rules $goal)" ;;
	qemu:*) echo "$level ${mode#qemu:}" >>"$DIR/stamps/qemu-checks"
		say "$level: tests deferred: load check under $QEMU -cpu ${mode#qemu:} after install (qemu-user cannot follow a test suite's child processes)" ;;
	skip:*) say "$level: tests skipped: ${mode#skip:}" ;;
	esac
	say "$level: build done"
}

# How many variant builds run at once, beside the baseline build.
# HWCAPDEB_VARIANT_JOBS=N if set; else, with parallel=N (N >= 2) in
# DEB_BUILD_OPTIONS, all of them (equal builds finish together; N jobs are
# shared among them, VARIANT_PARALLEL) when the rules use dh's sequencer,
# whose test step the lock wraps, or when no variant runs its tests; else 1.
# With 1 they build one after the other after the baseline, the only safe
# order for test suites the lock cannot wrap (non-dh rules).
variants_run_tests() {
	[ "${HWCAPDEB_VARIANT_TESTS:-auto}" != none ] && ! has_build_option nocheck
}

variant_lanes() {
	count=$(level_count)
	lanes=${HWCAPDEB_VARIANT_JOBS:-}
	case "$lanes" in
	'')
		lanes=1
		parallel=$(build_option_value parallel)
		case "$parallel" in '' | *[!0-9]*) parallel=1 ;; esac
		if [ "$parallel" -ge 2 ] && { uses_dh_sequencer || ! variants_run_tests; }; then
			lanes=$count
		fi
		;;
	*[!0-9]*) die "HWCAPDEB_VARIANT_JOBS must be a number (got '$lanes')" ;;
	esac
	[ "$lanes" -le "$count" ] || lanes=$count
	[ "$lanes" -ge 1 ] || lanes=1
	echo "$lanes"
}

# parallel=N shared among LANES builds at once, at least 1 each.
variant_parallel() {
	parallel=$(build_option_value parallel)
	case "$parallel" in '' | *[!0-9]*) return 0 ;; esac
	share=$((parallel / $1))
	[ "$share" -ge 1 ] || share=1
	echo "$share"
}

build_lane() {  # build_lane INDEX LANES: every LANES-th level from INDEX
	i=0
	for level in $LEVELS; do
		if [ $((i % $2)) -eq "$1" ]; then
			build_variant "$level"
		fi
		i=$((i + 1))
	done
}

# build_lanes LANES: the common steps (cmd_prepare), then LANES lanes at once;
# LANES_FAILED is "yes" when any lane failed.  Not a function's exit status:
# a function called in a condition would run without set -e.
build_lanes() {
	cmd_prepare
	pids=
	lane=0
	while [ "$lane" -lt "$1" ]; do
		build_lane "$lane" "$1" &
		pids="$pids $!"
		lane=$((lane + 1))
	done
	LANES_FAILED=
	for pid in $pids; do
		wait "$pid" || LANES_FAILED=yes
	done
}

# The test lock (a directory: mkdir is atomic) and the two commands the dh
# addon runs around every dh_auto_test, the baseline's included, while builds
# overlap.  A build that fails holding it releases it (release_test_lock).
TEST_LOCK_BIN=$DIR/stamps/bin
setup_test_lock() {
	HWCAPDEB_TEST_LOCK="$(pwd)/$DIR/stamps/test-lock"
	export HWCAPDEB_TEST_LOCK
	rm -rf "$HWCAPDEB_TEST_LOCK"
	mkdir -p "$TEST_LOCK_BIN"
	cat >"$TEST_LOCK_BIN/hwcapdeb-tests-begin" <<'SCRIPT'
#!/bin/sh
# hwcapdeb: wait until no other build of this package runs its tests.
owner=${HWCAPDEB_VARIANT:-baseline}
said=
until mkdir "$HWCAPDEB_TEST_LOCK" 2>/dev/null; do
	if [ -z "$said" ]; then
		echo "hwcapdeb: $owner: tests wait for the $(cat "$HWCAPDEB_TEST_LOCK/owner" 2>/dev/null || echo other) build's tests"
		said=yes
	fi
	sleep 0.2
done
echo "$owner" >"$HWCAPDEB_TEST_LOCK/owner"
SCRIPT
	cat >"$TEST_LOCK_BIN/hwcapdeb-tests-end" <<'SCRIPT'
#!/bin/sh
# hwcapdeb: this build's tests are over; let the next build run its own.
rm -rf "$HWCAPDEB_TEST_LOCK"
SCRIPT
	chmod 755 "$TEST_LOCK_BIN/hwcapdeb-tests-begin" "$TEST_LOCK_BIN/hwcapdeb-tests-end"
	PATH="$(pwd)/$TEST_LOCK_BIN:$PATH"
	export PATH
}

release_test_lock() {  # release_test_lock OWNER: after OWNER's build failed
	if [ -n "${HWCAPDEB_TEST_LOCK:-}" ] && [ "$(cat "$HWCAPDEB_TEST_LOCK/owner" 2>/dev/null)" = "$1" ]; then
		rm -rf "$HWCAPDEB_TEST_LOCK"
	fi
}

# debian/rules build|build-arch: snapshot, the maintainer's target (the
# baseline) and the variants: beside it when variant_lanes says more than 1
# (their common steps first, see cmd_prepare), else after it.
cmd_build() {
	goal=${1:-build-arch}
	if [ -f "$DIR/stamps/variants" ]; then
		HWCAPDEB_PASS=1 ${MAKE:-make} -f debian/rules "$goal"
		return
	fi
	cmd_snapshot
	rm -f "$DIR/stamps/qemu-checks"
	write_saver_site
	[ -f "$BUILD_ROOT/pristine.tar" ] || die "no pristine snapshot in $BUILD_ROOT: run 'debian/rules clean' first"
	lanes=$(variant_lanes)
	status=0
	if [ "$lanes" -gt 1 ]; then
		VARIANT_PARALLEL=$(variant_parallel "$lanes")
		setup_test_lock
		say "$lanes variants build at a time beside the baseline${VARIANT_PARALLEL:+ (parallel=$VARIANT_PARALLEL each)}, test suites taking turns"
		(
			build_lanes "$lanes"
			[ -z "$LANES_FAILED" ]
		) &
		variants=$!
		# The addon in the baseline wraps its tests in the lock, nothing else
		# (no HWCAPDEB_STAGE).
		perl5lib="$(pwd)/$DIR/perl${PERL5LIB:+:$PERL5LIB}"
		HWCAPDEB_PASS=1 HWCAPS_MODE=embed PERL5LIB="$perl5lib" \
			DH_EXTRA_ADDONS="hwcaps${DH_EXTRA_ADDONS:+,$DH_EXTRA_ADDONS}" \
			${MAKE:-make} -f debian/rules "$goal" || status=$?
		[ "$status" -eq 0 ] || release_test_lock baseline
		failed=
		wait "$variants" || failed=yes
		[ "$status" -eq 0 ] || exit "$status"
		[ -z "$failed" ] || die "a variant build failed (see the lines above)"
	else
		HWCAPDEB_PASS=1 ${MAKE:-make} -f debian/rules "$goal" || status=$?
		[ "$status" -eq 0 ] || exit "$status"
		cmd_prepare
		build_lane 0 1
	fi
	rm -f "$BUILD_ROOT/pristine.tar" "$BUILD_ROOT/prepared.tar"
	touch "$DIR/stamps/variants"
}

soname_of() {
	LC_ALL=C readelf -d -W "$1" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p'
}

is_elf() {
	[ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]
}

# find_variant_file TREE PKG REL SONAME: the file of the variant build in
# TREE that corresponds to the baseline's debian/PKG/REL.  The same path in
# the variant's debian/PKG or debian/tmp first, then any file with that
# SONAME in the tree, same file name first.
find_variant_file() {
	tree=$1 pkg=$2 rel=$3 soname=$4
	base=${rel##*/}
	for cand in "$tree/debian/$pkg/$rel" "$tree/debian/tmp/$rel"; do
		if [ -f "$cand" ] && [ ! -L "$cand" ] && [ "$(soname_of "$cand")" = "$soname" ]; then
			echo "$cand"
			return 0
		fi
	done
	fallback=
	for cand in $(find "$tree" -path "$tree/$DIR" -prune -o -path '*/glibc-hwcaps' -prune -o \
		-type f \( -name '*.so' -o -name '*.so.*' \) -print | LC_ALL=C sort); do
		is_elf "$cand" || continue
		[ "$(soname_of "$cand")" = "$soname" ] || continue
		if [ "${cand##*/}" = "$base" ]; then
			echo "$cand"
			return 0
		fi
		[ -n "$fallback" ] || fallback=$cand
	done
	[ -n "$fallback" ] && echo "$fallback"
}

exported_symbols() {
	LC_ALL=C nm -D --defined-only -P "$1" | cut -d' ' -f1 | LC_ALL=C sort -u
}

check_variant_file() {  # check_variant_file FILE LEVEL SONAME BASELINE-FILE
	# The loader swaps the variant in for the baseline: it must export every
	# symbol (and version) the baseline does, or programs fail to start.
	exported_symbols "$4" >"$DIR/stamps/symbols.baseline"
	exported_symbols "$1" >"$DIR/stamps/symbols.variant"
	missing=$(LC_ALL=C comm -23 "$DIR/stamps/symbols.baseline" "$DIR/stamps/symbols.variant" | head -n 5 | tr '\n' ' ')
	if [ -n "$missing" ]; then
		die "$2: $1 ($3) lacks symbols the baseline exports: ${missing% }: the variant build changed the ABI"
	fi
	if [ "$ISA_MARKER" = x86 ] && ! LC_ALL=C readelf -n -W "$1" | grep -Eq "x86 ISA needed:.*\\b$2\\b"; then
		die "$2: $1 ($3) has no $2 ISA marker: the build did not use the level's flags (does debian/rules honour dpkg-buildflags?)"
	fi
	if [ "$ISA_MARKER" = x86 ]; then
		for above in $(level_above "$2"); do
			if LC_ALL=C readelf -n -W "$1" | grep -Eq "x86 ISA needed:.*\\b$above\\b"; then
				die "$2: $1 ($3) carries an ISA marker for $above: glibc would refuse it on $2 CPUs (objects the package compiles with its own -m flags, e.g. for runtime dispatch, are marked by -mneeded); use a profile that marks at link time (cflags without -mneeded, ldflags -Wl,-z,$2)"
			fi
		done
	fi
}

# drop_build_runpath FILE LEVEL SONAME SRC: FILE (the installed copy of SRC)
# without the run path an uninstalled libtool tree gives it (libtool relinks
# only at install time, which rules without dh may never run for a variant):
# hwcaps-runpath drops a DT_RUNPATH/DT_RPATH whose entries all point into the
# build trees (or are system directories); the loader then finds the
# package's other libraries as for the baseline, glibc-hwcaps included.
drop_build_runpath() {
	real=$(cd "$BUILD_ROOT" && pwd -P)
	triplet=${DEB_HOST_MULTIARCH:-$(dpkg-architecture -qDEB_HOST_MULTIARCH)}
	if ! said=$(perl "$HERE/hwcaps-runpath" "$1" "$triplet" "$real" "$(pwd)/$BUILD_ROOT"); then
		die "$2: $3 was taken from $4: ${said#hwcaps-runpath: }"
	fi
	[ -z "$said" ] || say "$2: $3: $said"
	paths=$(LC_ALL=C readelf -d -W "$1" | sed -n 's/.*(\(RPATH\|RUNPATH\)).*\[\(.*\)\]$/\2/p')
	case "$paths" in
	*/"$BUILD_ROOT"/* | "$real"/*) die "$2: $3 was taken from $4, whose run path '$paths' points into the build tree" ;;
	esac
}

# runtime_aliases FILE SONAME: the other names the baseline's package gives
# FILE in its directory (bzip2's libbz2.so.1 beside the SONAME libbz2.so.1.0):
# programs linked against such a name find the variant too.  No *.so: a
# development link has no place in glibc-hwcaps.
runtime_aliases() {
	for link in "${1%/*}"/*; do
		[ -L "$link" ] || continue
		case "${link##*/}" in "$2" | *.so) continue ;; esac
		[ "$(readlink -f "$link")" = "$(readlink -f "$1")" ] && echo "${link##*/}"
	done
	return 0
}

install_package() {
	pkg=$1
	triplet=${DEB_HOST_MULTIARCH:-$(dpkg-architecture -qDEB_HOST_MULTIARCH)}
	libs=
	for libdir in "usr/lib/$triplet" "lib/$triplet"; do
		[ -d "debian/$pkg/$libdir" ] || continue
		for f in "debian/$pkg/$libdir"/*; do
			if [ ! -f "$f" ] || [ -L "$f" ] || ! is_elf "$f"; then continue; fi
			soname=$(soname_of "$f")
			[ -n "$soname" ] && libs="$libs $libdir/${f##*/}:$soname"
		done
	done
	if [ -n "$libs" ] && [ ! -f "$DIR/stamps/variants" ]; then
		die "the variants were not built: run 'debian/rules build-arch' before the binary targets"
	fi
	for level in $LEVELS; do
		target=$pkg
		case " $SPLIT_PACKAGES " in *" $pkg "*) target="$pkg-$level" ;; esac
		count=0
		for entry in $libs; do
			rel=${entry%:*}
			soname=${entry##*:}
			src=$(find_variant_file "$BUILD_ROOT/$level" "$pkg" "$rel" "$soname")
			[ -n "$src" ] || die "$level: the variant build produced no library with SONAME $soname (the baseline ships /$rel in $pkg)"
			check_variant_file "$src" "$level" "$soname" "debian/$pkg/$rel"
			dest="debian/$target/${rel%/*}/glibc-hwcaps/$level"
			install -d "$dest"
			install -m 644 "$src" "$dest/${rel##*/}"
			drop_build_runpath "$dest/${rel##*/}" "$level" "$soname" "$src"
			if [ "${rel##*/}" != "$soname" ]; then
				ln -sf "${rel##*/}" "$dest/$soname"
			fi
			runtime_aliases "debian/$pkg/$rel" "$soname" | while read -r alias; do
				ln -sf "${rel##*/}" "$dest/$alias"
			done
			count=$((count + 1))
			if [ -f "$DIR/stamps/qemu-checks" ]; then
				qemu_check "$level" "$dest" "$soname"
			fi
		done
		if [ "$count" -gt 0 ]; then
			say "$level: installed $count libraries into $target"
		fi
	done
}

# Loads one installed variant under an emulated CPU of its level: the loader
# runs its relocations and constructors there.  The weaker check for levels
# this CPU cannot run natively.
qemu_check() {
	cpu=$(sed -n "s/^$1 //p" "$DIR/stamps/qemu-checks")
	[ -n "$cpu" ] || return 0
	if "$QEMU" -cpu "$cpu" "$LOADER" --library-path "$2" --preload "$3" /bin/true; then
		say "$1: load check passed under $QEMU -cpu $cpu ($3)"
	else
		die "$1: $3 does not load under $QEMU -cpu $cpu"
	fi
}

cmd_install() {
	[ -z "$HWCAPDEB_VARIANT" ] || return 0
	mkdir -p "$DIR/stamps"
	for pkg in $LIB_PACKAGES; do
		[ -d "debian/$pkg" ] || continue
		[ -f "$DIR/stamps/install-$pkg" ] && continue
		install_package "$pkg"
		touch "$DIR/stamps/install-$pkg"
	done
}

# Shims that run first in PATH during the binary targets: whichever the
# rules call first installs the variants (before dh_dwz/dh_strip, so the
# debug symbols go into -dbgsym); dh_makeshlibs leaves the variants out of
# shlibs and symbols files.
cmd_shims() {
	mkdir -p "$DIR/bin"
	bindir="$(pwd)/$DIR/bin"
	for tool in dh_dwz dh_strip dh_makeshlibs dh_shlibdeps dh_gencontrol; do
		extra=
		[ "$tool" = dh_makeshlibs ] && extra=' -X/glibc-hwcaps/'
		cat >"$DIR/bin/$tool" <<SHIM
#!/bin/sh
# hwcapdeb shim: install the glibc-hwcaps variants, then run the real $tool.
set -e
[ -n "\$HWCAPDEB_VARIANT" ] || sh debian/hwcapdeb/variants.sh install
path=
oldifs=\$IFS
IFS=:
for p in \$PATH; do
	[ "\$p" = "$bindir" ] || path="\${path:+\$path:}\$p"
done
IFS=\$oldifs
PATH=\$path
export PATH
exec $tool$extra "\$@"
SHIM
		chmod 755 "$DIR/bin/$tool"
	done
}

cmd_clean() {
	if [ "$MODE" = addon ]; then
		rm -rf "$DIR"
	else
		remove_state_dirs
		rm -rf "${DIR:?}/bin"
	fi
}

# addon mode, around dh_makeshlibs (dh_hwcaps_stash before it, unstash after):
# the installed glibc-hwcaps directories wait in $DIR/stash, so neither
# dh_makeshlibs nor a maintainer's override_dh_makeshlibs (which does not
# get the addon's -X/glibc-hwcaps/) puts variants into shlibs or symbols.
cmd_stash() {
	for pkg in $LIB_PACKAGES $(for p in $SPLIT_PACKAGES; do for l in $LEVELS; do echo "$p-$l"; done; done); do
		[ -d "debian/$pkg" ] || continue
		find "debian/$pkg" -type d -name glibc-hwcaps -prune | LC_ALL=C sort | while read -r dir; do
			keep="$DIR/stash/${dir#debian/}"
			mkdir -p "${keep%/*}"
			mv "$dir" "$keep"
		done
	done
	return 0
}

cmd_unstash() {
	[ -d "$DIR/stash" ] || return 0
	(cd "$DIR/stash" && find . -type d -name glibc-hwcaps -prune) | while read -r rel; do
		rel=${rel#./}
		[ ! -e "debian/$rel" ] || die "debian/$rel reappeared while dh_makeshlibs ran"
		mv "$DIR/stash/$rel" "debian/$rel"
	done
	rm -rf "${DIR:?}/stash"
}

# addon mode (dh_hwcaps_build, after the baseline's dh_auto_test): the
# variants, from the snapshot dh_hwcaps_snapshot took before the baseline's
# first build step; their common steps first (see cmd_prepare).
cmd_variants() {
	[ -f "$DIR/stamps/variants" ] && return 0
	[ -f "$BUILD_ROOT/pristine.tar" ] || die "no pristine snapshot in $BUILD_ROOT: dh_hwcaps_snapshot did not run; run 'debian/rules clean' and build again"
	rm -f "$DIR/stamps/qemu-checks"
	write_saver_site
	lanes=$(variant_lanes)
	if [ "$lanes" -gt 1 ]; then
		VARIANT_PARALLEL=$(variant_parallel "$lanes")
		setup_test_lock
		say "$lanes variants build at a time${VARIANT_PARALLEL:+ (parallel=$VARIANT_PARALLEL each)}, test suites taking turns"
		build_lanes "$lanes"
		[ -z "$LANES_FAILED" ] || die "a variant build failed (see the lines above)"
	else
		cmd_prepare
		build_lane 0 1
	fi
	rm -f "$BUILD_ROOT/pristine.tar" "$BUILD_ROOT/prepared.tar"
	touch "$DIR/stamps/variants"
}

# check: the configuration only (the first build step runs it through
# dh_hwcaps_snapshot; a mistake stops the build before anything is built).
cmd_check() {
	:
}

[ -z "${HWCAPS_LIB_ONLY:-}" ] || return 0
step=${1:-}
[ $# -eq 0 ] || shift
case "$step" in
check | snapshot | build | variants | shims | install | stash | unstash) ;;
clean)
	cmd_clean
	exit 0
	;;
*) die "usage: sh hwcaps-variants.sh check|snapshot|build|variants|shims|install|stash|unstash|clean" ;;
esac
load_config
# Another architecture than the configuration's builds as without variants.
if [ "$MODE" = addon ] && [ "${DEB_HOST_ARCH:-$(dpkg-architecture -qDEB_HOST_ARCH)}" != "$ARCH" ]; then
	exit 0
fi
"cmd_$step" "$@"
